//! The relay's checkpoint as the `projections` table stores it (a signed `BIGINT`).

/// A checkpoint read from the `projections` table. A negative one is corrupt and an error, as
/// on the read side: read as 0 it would republish the whole feed.
pub(crate) fn unsigned(value: i64) -> sqlx::Result<u64> {
    u64::try_from(value).map_err(|_| {
        sqlx::Error::Decode(
            format!("the relay's checkpoint is negative ({value}): the projections row is corrupt")
                .into(),
        )
    })
}

/// A checkpoint as stored (positions beyond `i64::MAX` are never issued).
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_negative_checkpoint_is_an_error_not_zero() {
        assert_eq!(super::unsigned(7).ok(), Some(7));
        assert_eq!(super::unsigned(0).ok(), Some(0));
        let error = super::unsigned(-1).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("negative (-1)")),
            "{error:?}"
        );
    }
}
