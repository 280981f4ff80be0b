//! The frame every page shares, and the small renderings several pages use.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::session::Staff;

/// Which section a page belongs to (its navigation link is marked current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Orders,
    Feed,
    Operations,
    Health,
}

impl Section {
    const ALL: [(Self, &'static str, &'static str); 4] = [
        (Self::Orders, "/console/orders", "Orders"),
        (Self::Feed, "/console/feed", "Live feed"),
        (
            Self::Operations,
            "/console/operations",
            "Projections and outbox",
        ),
        (Self::Health, "/console/health", "Health"),
    ];
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · orders console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page of the console for a logged-in staff member.
pub fn page(staff: &Staff, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/orders" { "orders console" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in Section::ALL {
                                li {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form class="logout" method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(staff.csrf);
                        span class="who" { "Signed in as " strong { (staff.session.subject) } }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login page: the link's sign-in button when `token` is given, otherwise how to get a link.
/// `problem` says why the last attempt failed.
pub fn login_page(token: Option<&str>, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body {
                main id="main" class="narrow" {
                    h1 { "orders console" }
                    @if let Some(problem) = problem {
                        p class="notice error" role="alert" { (problem) }
                    }
                    @if let Some(token) = token {
                        form method="post" action="/console/login" {
                            input type="hidden" name="token" value=(token);
                            p { "This link signs you in once. It stops working when it is used or after a few minutes." }
                            button type="submit" autofocus { "Sign in" }
                        }
                    } @else {
                        p { "The console is for staff. To sign in, ask the service for a one-time link:" }
                        pre { code { "orders console-link --sub <your name>" } }
                        p { "and open the link it prints within five minutes." }
                    }
                }
            }
        }
    }
}

/// A page that only says something (a refused form).
pub fn message_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main id="main" class="narrow" {
                    h1 { (title) }
                    p class="notice error" role="alert" { (message) }
                    p { a href="/console/orders" { "Back to the console" } }
                }
            }
        }
    }
}

/// A notice at the top of a page: what just happened, or why it did not.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An action succeeded.
    Done(String),
    /// An action was refused, or something could not be read.
    Problem(String),
}

/// The notice, announced to screen readers.
pub fn notice(notice: Option<&Notice>) -> Markup {
    html! {
        @match notice {
            Some(Notice::Done(text)) => p class="notice done" role="status" { (text) },
            Some(Notice::Problem(text)) => p class="notice error" role="alert" { (text) },
            None => {},
        }
    }
}

/// A time as UTC, to the millisecond, in a `<time>` element.
pub fn time(at: &DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S%.3f")) } }
}

/// A time from JSON (RFC 3339), or a dash.
pub fn json_time(value: &Value) -> Markup {
    match value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(at) => time(&at.with_timezone(&Utc)),
        None => html! { "—" },
    }
}

/// An amount of minor units in its currency: `2100` `EUR` is `21.00 EUR`. Integer arithmetic.
pub fn money(minor: i64, currency: &str) -> String {
    let exponent = domain::Currency::new(currency)
        .ok()
        .and_then(|c| c.minor_unit_exponent())
        .unwrap_or(0);
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let scale = 10_i128.pow(u32::from(exponent));
    let amount = i128::from(minor);
    let sign = if amount < 0 { "-" } else { "" };
    let whole = amount.abs() / scale;
    let fraction = amount.abs() % scale;
    format!(
        "{sign}{whole}.{fraction:0width$} {currency}",
        width = usize::from(exponent)
    )
}

/// JSON, indented, for a `<pre>`.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A JSON value as text: strings without quotes, `null` as a dash.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A status badge.
pub fn status(status: &str) -> Markup {
    html! { span class={ "status status-" (status) } { (status) } }
}

/// Inline SVG is markup, not text: used for the charts this module draws itself.
pub fn svg(markup: String) -> Markup {
    PreEscaped(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_in_its_currency_s_minor_unit() {
        assert_eq!(money(2100, "EUR"), "21.00 EUR");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-1050, "USD"), "-10.50 USD");
        assert_eq!(money(1200, "JPY"), "1200 JPY");
        assert_eq!(money(1234, "KWD"), "1.234 KWD");
        assert_eq!(money(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }
}
