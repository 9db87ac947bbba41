//! Text forms more than one layer writes: an excerpt of a long text for a log line or a reason,
//! and the millisecond timestamp form (`2026-05-01T12:00:00.123`) that SQLite, `CAST(... AS
//! datetime)` and the host's enqueued times all read.

use std::fmt;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

/// The first `max` characters of `text`, with `...` when it was cut.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Why rustls refused a certificate, in words: its reasons are type names (`UnknownIssuer`,
/// `Other(OtherError(CaUsedAsEndEntity))`), which mean nothing to a user.
const CERTIFICATE_REASONS: &[(&str, &str)] = &[
    (
        "CaUsedAsEndEntity",
        "it is a certificate authority's own certificate, not one issued for the server",
    ),
    ("UnknownIssuer", "its issuer is not trusted on this machine"),
    ("NotValidForName", "it is not issued for this host name"),
    ("NotValidYet", "it is not valid yet"),
    ("Expired", "it has expired"),
    ("Revoked", "it is revoked"),
    ("BadSignature", "its signature does not verify"),
    ("BadEncoding", "it cannot be read"),
    ("InvalidPurpose", "it is not issued for a TLS server"),
];

/// What the HTTP and Azure libraries put in their messages about themselves, and what a user
/// reads instead (nothing, or words).
const LIBRARY_PHRASES: &[(&str, &str)] = &[
    ("failed to execute `reqwest` request: ", ""),
    (
        "non-transport error occurred which will not be retried: ",
        "",
    ),
];

/// What azure_identity says of a credential that failed: `{its type} authentication failed`.
const CREDENTIAL_FAILED: &str = "Credential authentication failed";

/// Each credential's failure in a user's words, by the type's name before `Credential`
/// (`ManagedIdentityCredential`); any other is [`ENTRA_SIGN_IN_FAILED`].
const CREDENTIALS: &[(&str, &str)] = &[
    ("ManagedIdentity", "the managed identity's sign-in failed"),
    (
        "AzureCli",
        "the sign-in through the Azure CLI (az login) failed",
    ),
    (
        "AzureDeveloperCli",
        "the sign-in through the Azure Developer CLI (azd auth login) failed",
    ),
    ("WorkloadIdentity", "the workload identity's sign-in failed"),
];

/// Any other credential's failure.
const ENTRA_SIGN_IN_FAILED: &str = "the sign-in to Microsoft Entra ID failed";

/// `text` with every `<Name>Credential authentication failed` said in words ([`CREDENTIALS`]).
fn credential_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(CREDENTIAL_FAILED) {
        let before = &rest[..at];
        let start = before
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        out.push_str(&before[..start]);
        if name.is_empty() {
            out.push_str(CREDENTIAL_FAILED);
        } else {
            let words = CREDENTIALS
                .iter()
                .find(|(credential, _)| *credential == name)
                .map_or(ENTRA_SIGN_IN_FAILED, |(_, words)| words);
            out.push_str(words);
        }
        rest = &rest[at + CREDENTIAL_FAILED.len()..];
    }
    out.push_str(rest);
    out
}

/// A library's message in a user's words: the libraries' names of themselves left out, a failed
/// credential named by what it signs in with, and a refused certificate's reason (the rest of the
/// text after `invalid peer certificate: `) said in words, not as the type names rustls prints.
pub fn user_words(text: &str) -> String {
    const MARK: &str = "invalid peer certificate: ";
    let mut text = credential_words(text);
    for (phrase, words) in LIBRARY_PHRASES {
        text = text.replace(phrase, words);
    }
    let Some(at) = text.find(MARK) else {
        return text;
    };
    let reason = &text[at + MARK.len()..];
    let words = CERTIFICATE_REASONS
        .iter()
        .find(|(name, _)| reason.contains(name))
        .map_or("it was not accepted", |(_, words)| words);
    format!(
        "{}the server's certificate was refused: {words}",
        &text[..at]
    )
}

/// Displays an instant as `2026-05-01T12:00:00.123` (UTC, milliseconds, no zone).
#[derive(Debug, Clone, Copy)]
pub struct Millis(pub DateTime<Utc>);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand rather than with a chrono format string, which is parsed on every call (a
        // batch prints two per row).
        let at = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.timestamp_subsec_millis()
        )
    }
}

/// Appends `Millis(at)` to `out` digit by digit (a batch writes two per row); the same text.
pub fn push_millis(out: &mut String, at: DateTime<Utc>) {
    use std::fmt::Write as _;
    let year = at.year();
    if !(0..=9999).contains(&year) {
        let _ = write!(out, "{}", Millis(at));
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for slot in text[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year.unsigned_abs());
    put(5, 2, at.month());
    put(8, 2, at.day());
    put(11, 2, at.hour());
    put(14, 2, at.minute());
    put(17, 2, at.second());
    // A leap second's 1000-1999 ms prints as Millis prints it.
    let millis = at.timestamp_subsec_millis();
    if millis > 999 {
        let _ = write!(out, "{}", Millis(at));
        return;
    }
    put(20, 3, millis);
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_is_said_in_words_not_type_names() {
        assert_eq!(
            user_words(
                "error sending request: client error (Connect): invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"
            ),
            "error sending request: client error (Connect): the server's certificate was refused: it is a certificate authority's own certificate, not one issued for the server"
        );
        assert_eq!(
            user_words("invalid peer certificate: UnknownIssuer"),
            "the server's certificate was refused: its issuer is not trusted on this machine"
        );
        assert_eq!(
            user_words("invalid peer certificate: Something { new: 1 }"),
            "the server's certificate was refused: it was not accepted"
        );
        assert_eq!(user_words("connection refused"), "connection refused");
        assert_eq!(
            user_words(
                "cannot get a token: non-transport error occurred which will not be retried: ManagedIdentityCredential authentication failed. x: failed to execute `reqwest` request: error sending request"
            ),
            "cannot get a token: the managed identity's sign-in failed. x: error sending request"
        );
    }

    #[test]
    fn every_failed_credential_is_named_by_what_it_signs_in_with_not_its_type() {
        assert_eq!(
            user_words(
                "Multiple errors were encountered while attempting to authenticate:\nAzureCliCredential authentication failed. Please run 'az login' to setup account.\nAzureDeveloperCliCredential authentication failed.\nERROR: not logged in"
            ),
            "Multiple errors were encountered while attempting to authenticate:\nthe sign-in through the Azure CLI (az login) failed. Please run 'az login' to setup account.\nthe sign-in through the Azure Developer CLI (azd auth login) failed.\nERROR: not logged in"
        );
        assert_eq!(
            user_words("WorkloadIdentityCredential authentication failed. invalid assertion"),
            "the workload identity's sign-in failed. invalid assertion"
        );
        assert_eq!(
            user_words("x: ClientSecretCredential authentication failed. AADSTS7000215"),
            "x: the sign-in to Microsoft Entra ID failed. AADSTS7000215"
        );
        assert_eq!(
            user_words("SomeFutureCredential authentication failed"),
            "the sign-in to Microsoft Entra ID failed"
        );
        assert_eq!(
            user_words("Credential authentication failed"),
            "Credential authentication failed",
            "no type named: nothing to replace"
        );
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        assert_eq!(excerpt("héllo", 2), "hé...");
        assert_eq!(excerpt("héllo", 5), "héllo");
        assert_eq!(excerpt("", 3), "");
    }

    #[test]
    fn instants_print_with_milliseconds_and_no_zone() {
        let at = DateTime::from_timestamp_millis(1_680_191_532_004).unwrap();
        assert_eq!(Millis(at).to_string(), "2023-03-30T15:52:12.004");
        assert_eq!(
            Millis(at).to_string(),
            at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
        );
    }

    #[test]
    fn pushed_instants_read_as_displayed() {
        for ms in [
            0,
            1_680_191_532_004,
            -6_847_804_800_000,
            253_402_300_799_997,
            -62_135_596_800_000,
            -62_135_596_800_001,
            253_402_300_800_000,
            951_782_400_999,
        ] {
            let at = DateTime::from_timestamp_millis(ms).unwrap();
            let mut out = String::from("x");
            push_millis(&mut out, at);
            assert_eq!(out, format!("x{}", Millis(at)), "{ms}");
        }
    }
}
