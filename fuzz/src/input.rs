//! The input format of every target: one or more leading lines that pick what to call, then the
//! bytes under test. Plain text, so that a seed corpus can be written and read by hand.

/// Splits `data` at its first `\n` into the bytes before it and the bytes after it; `None` when
/// there is no `\n`.
pub fn split_at_newline(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|&byte| byte == b'\n')?;
    Some((&data[..end], &data[end + 1..]))
}

/// [`split_at_newline`], with the first line as UTF-8. `None` when there is no `\n` or the line
/// is not UTF-8; a target then ignores the input.
pub fn split_line(data: &[u8]) -> Option<(&str, &[u8])> {
    let (line, rest) = split_at_newline(data)?;
    Some((std::str::from_utf8(line).ok()?, rest))
}
