//! The meeting link: what a page needs to join, carried in the URL fragment (after `#`), which
//! browsers never send to a server, so neither the page's host nor anything on the path learns
//! the invite.
//!
//! ```text
//! fragment = "veil1" *( "&" key "=" value )          each key at most once, in any order
//! board        = host ":" port                       required: the board's WebSocket listener
//! meeting      = 1*256 unreserved                    required: the meeting ID
//! board_sha256 = 64 hex digits                       the board certificate's SHA-256, pinned
//! invite       = 64 hex digits                       the host's invite for this participant
//! user         = 1*64 unreserved                     the userID the page joins under (the invite's)
//! relay        = host ":" port                       the relay's WebTransport listener
//! relay_sha256 = 64 hex digits                       the relay certificate's SHA-256
//! pq           = "required" / "preferred" / "off"     post-quantum key delivery, and a hybrid
//!                                                    identity unless off (default preferred)
//! media        = "rtp" / "datagram"                  how the meeting's media is sealed (default datagram)
//! unreserved   = ALPHA / DIGIT / "-" / "." / "_" / "~"   (RFC 3986 2.3)
//! host         = 1*253 of unreserved, or "[" IPv6 "]"
//! ```
//!
//! Anything else (an unknown key, a repeated one, a value out of its alphabet or length, a
//! missing `veil1` or `board` or `meeting`) is refused with a [`LinkError`] naming it: a link
//! is either exactly understood or not used.

use dataplane::packet::Mode;
use keyctl::meeting::{Invite, PqPolicy};
use zeroize::Zeroizing;

/// The version tag every link starts with.
const TAG: &str = "veil1";
/// Longest meeting ID (the board's text limit).
const MAX_MEETING: usize = 256;
/// Longest host name (RFC 1035).
const MAX_HOST: usize = 253;
/// Longest user ID in a link (and in a host's `POST /invite`).
pub const MAX_USER: usize = 64;

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// It does not start with `veil1`.
    #[error("not a Veil meeting link (it must start with {TAG})")]
    NotVeil,
    /// A `key=value` pair without `=`.
    #[error("a link field without '=': {0:?}")]
    Malformed(String),
    /// A key this version does not know.
    #[error("unknown link field {0:?}")]
    UnknownField(String),
    /// A key given twice.
    #[error("link field {0} given twice")]
    Repeated(&'static str),
    /// A required key is missing.
    #[error("the link has no {0}")]
    Missing(&'static str),
    /// A value outside its alphabet or length.
    #[error("link field {0} has an invalid value")]
    BadValue(&'static str),
}

/// A parsed meeting link.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingLink {
    /// The board's WebSocket listener, `host:port`.
    pub board: String,
    /// The meeting ID.
    pub meeting: String,
    /// The board certificate's SHA-256, for clients that can pin it (a native one). A
    /// browser's WebSocket cannot: it checks the board's certificate against the Web PKI, so a
    /// board browsers reach needs a certificate they trust. (The relay's WebTransport can pin,
    /// through `serverCertificateHashes`: [`Self::relay_sha256`].)
    pub board_sha256: Option<[u8; 32]>,
    /// The host's invite for this participant (a secret: zeroized on drop).
    pub invite: Option<Invite>,
    /// The userID to join under: the one the invite was made for (an invite admits only its
    /// own userID), and the name the others see. A page without it picks a name itself.
    pub user: Option<String>,
    /// The relay's WebTransport listener, `host:port`.
    pub relay: Option<String>,
    /// The relay certificate's SHA-256.
    pub relay_sha256: Option<[u8; 32]>,
    /// Post-quantum key delivery for this participant (issue 16; v4.6 hybrid box): `Required`
    /// takes keys only from a leader that requires it too.
    pub pq: PqPolicy,
    /// How the meeting's media is sealed: RTP mode (the RTP header clear, what the sidecars
    /// run with `--rtp`, and what the page's video is) or datagram mode.
    pub media: Mode,
}

impl core::fmt::Debug for MeetingLink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeetingLink")
            .field("board", &self.board)
            .field("meeting", &self.meeting)
            .field("invite", &self.invite.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Whether `user` is a userID a link may carry: 1 to [`MAX_USER`] unreserved characters
/// (RFC 3986 2.3), so it needs no escaping in a URL and shows as itself.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty() && user.len() <= MAX_USER && user.chars().all(unreserved)
}

/// `host:port` with a host of unreserved characters or a bracketed IPv6 address, and a port of
/// 1 to 65535.
fn host_port(value: &str, field: &'static str) -> Result<String, LinkError> {
    let bad = || LinkError::BadValue(field);
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.len() <= MAX_HOST && host.chars().all(unreserved),
    };
    // Digits only: `u16::from_str` would also take a leading `+`, which no URL allows.
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    if host_ok && port_ok {
        Ok(value.to_owned())
    } else {
        Err(bad())
    }
}

fn hex32(value: &str, field: &'static str) -> Result<[u8; 32], LinkError> {
    let mut out = [0u8; 32];
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LinkError::BadValue(field));
    }
    hex::decode_to_slice(value, &mut out).map_err(|_| LinkError::BadValue(field))?;
    Ok(out)
}

/// Sets `slot` once.
fn once<T>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), LinkError> {
    if slot.is_some() {
        return Err(LinkError::Repeated(field));
    }
    *slot = Some(value);
    Ok(())
}

impl MeetingLink {
    /// Parses a fragment (with or without its leading `#`).
    pub fn parse(fragment: &str) -> Result<Self, LinkError> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let mut fields = fragment.split('&');
        if fields.next() != Some(TAG) {
            return Err(LinkError::NotVeil);
        }
        let (mut board, mut meeting, mut board_sha256) = (None, None, None);
        let (mut invite, mut relay, mut relay_sha256) = (None, None, None);
        let (mut pq, mut user, mut media) = (None, None, None);
        for field in fields {
            // A field without '=' may be a secret whose '=' got lost (`invite0123...`): name
            // only its leading lowercase run, never its value.
            let (key, value) = field.split_once('=').ok_or_else(|| {
                LinkError::Malformed(
                    field
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .take(16)
                        .collect(),
                )
            })?;
            match key {
                "board" => once(&mut board, "board", host_port(value, "board")?)?,
                "meeting" => {
                    let ok = !value.is_empty()
                        && value.len() <= MAX_MEETING
                        && value.chars().all(unreserved);
                    if !ok {
                        return Err(LinkError::BadValue("meeting"));
                    }
                    once(&mut meeting, "meeting", value.to_owned())?;
                }
                "board_sha256" => {
                    once(
                        &mut board_sha256,
                        "board_sha256",
                        hex32(value, "board_sha256")?,
                    )?;
                }
                "invite" => {
                    let bytes = Zeroizing::new(hex32(value, "invite")?);
                    once(&mut invite, "invite", Invite::new(*bytes))?;
                }
                "user" => {
                    if !valid_user(value) {
                        return Err(LinkError::BadValue("user"));
                    }
                    once(&mut user, "user", value.to_owned())?;
                }
                "relay" => once(&mut relay, "relay", host_port(value, "relay")?)?,
                "relay_sha256" => {
                    once(
                        &mut relay_sha256,
                        "relay_sha256",
                        hex32(value, "relay_sha256")?,
                    )?;
                }
                "pq" => {
                    let policy = match value {
                        "required" => PqPolicy::Required,
                        "preferred" => PqPolicy::Preferred,
                        "off" => PqPolicy::Off,
                        _ => return Err(LinkError::BadValue("pq")),
                    };
                    once(&mut pq, "pq", policy)?;
                }
                "media" => {
                    let mode = match value {
                        "rtp" => Mode::Rtp,
                        "datagram" => Mode::Datagram,
                        _ => return Err(LinkError::BadValue("media")),
                    };
                    once(&mut media, "media", mode)?;
                }
                other => return Err(LinkError::UnknownField(other.chars().take(32).collect())),
            }
        }
        Ok(Self {
            board: board.ok_or(LinkError::Missing("board"))?,
            meeting: meeting.ok_or(LinkError::Missing("meeting"))?,
            board_sha256,
            invite,
            user,
            relay,
            relay_sha256,
            pq: pq.unwrap_or_default(),
            media: media.unwrap_or(Mode::Datagram),
        })
    }

    /// The fragment (without `#`) that [`Self::parse`] reads back: the host hands this out.
    /// Written into one allocation big enough for every field, so no reallocation leaves a
    /// copy of the invite behind in freed memory.
    pub fn to_fragment(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            TAG.len() + self.board.len() + self.meeting.len() + 2 * MAX_HOST + 5 * 64 + 128,
        ));
        out.push_str(&format!(
            "{TAG}&board={}&meeting={}",
            self.board, self.meeting
        ));
        if let Some(sha) = &self.board_sha256 {
            out.push_str(&format!("&board_sha256={}", hex::encode(sha)));
        }
        if let Some(invite) = &self.invite {
            let hex = Zeroizing::new(hex::encode(invite.expose_secret()));
            out.push_str("&invite=");
            out.push_str(&hex);
        }
        if let Some(user) = &self.user {
            out.push_str(&format!("&user={user}"));
        }
        if let Some(relay) = &self.relay {
            out.push_str(&format!("&relay={relay}"));
        }
        if let Some(sha) = &self.relay_sha256 {
            out.push_str(&format!("&relay_sha256={}", hex::encode(sha)));
        }
        match self.pq {
            PqPolicy::Preferred => {}
            PqPolicy::Required => out.push_str("&pq=required"),
            PqPolicy::Off => out.push_str("&pq=off"),
        }
        match self.media {
            Mode::Datagram => {}
            Mode::Rtp => out.push_str("&media=rtp"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_link_round_trips() {
        let text = format!(
            "#veil1&board=board.example:7701&meeting=standup-42&board_sha256={}&invite={}&user=alice_1&relay=[::1]:4433&relay_sha256={}&pq=required&media=rtp",
            "ab".repeat(32),
            "01".repeat(32),
            "cd".repeat(32)
        );
        let link = MeetingLink::parse(&text).unwrap();
        assert_eq!(link.board, "board.example:7701");
        assert_eq!(link.meeting, "standup-42");
        assert_eq!(link.board_sha256, Some([0xab; 32]));
        assert_eq!(link.invite, Some(Invite::new([1; 32])));
        assert_eq!(link.user.as_deref(), Some("alice_1"));
        assert_eq!(link.relay.as_deref(), Some("[::1]:4433"));
        assert_eq!(link.pq, PqPolicy::Required);
        assert_eq!(link.media, Mode::Rtp);
        assert_eq!(MeetingLink::parse(&link.to_fragment()).unwrap(), link);
        // The invite never shows in a debug print.
        assert!(!format!("{link:?}").contains("0101"));
    }

    #[test]
    fn anything_not_exactly_understood_is_refused() {
        let ok = "veil1&board=b:1&meeting=m";
        assert_eq!(MeetingLink::parse(ok).unwrap().pq, PqPolicy::Preferred);
        assert_eq!(MeetingLink::parse(ok).unwrap().media, Mode::Datagram);
        let cases: &[(&str, LinkError)] = &[
            ("veil2&board=b:1&meeting=m", LinkError::NotVeil),
            ("board=b:1&meeting=m", LinkError::NotVeil),
            ("veil1&board=b:1", LinkError::Missing("meeting")),
            ("veil1&meeting=m", LinkError::Missing("board")),
            (
                "veil1&board=b:1&meeting=m&board=c:2",
                LinkError::Repeated("board"),
            ),
            (
                "veil1&board=b:1&meeting=m&x=1",
                LinkError::UnknownField("x".into()),
            ),
            (
                "veil1&board=b:1&meeting=m&flag",
                LinkError::Malformed("flag".into()),
            ),
            ("veil1&board=b:+80&meeting=m", LinkError::BadValue("board")),
            ("veil1&board=b&meeting=m", LinkError::BadValue("board")),
            ("veil1&board=b:0&meeting=m", LinkError::BadValue("board")),
            (
                "veil1&board=b:65536&meeting=m",
                LinkError::BadValue("board"),
            ),
            ("veil1&board=b:080&meeting=m", LinkError::BadValue("board")),
            ("veil1&board=b/x:1&meeting=m", LinkError::BadValue("board")),
            ("veil1&board=[zz]:1&meeting=m", LinkError::BadValue("board")),
            ("veil1&board=b:1&meeting=", LinkError::BadValue("meeting")),
            (
                "veil1&board=b:1&meeting=a%20b",
                LinkError::BadValue("meeting"),
            ),
            (
                "veil1&board=b:1&meeting=m&invite=00",
                LinkError::BadValue("invite"),
            ),
            (
                "veil1&board=b:1&meeting=m&user=",
                LinkError::BadValue("user"),
            ),
            (
                "veil1&board=b:1&meeting=m&user=a%20b",
                LinkError::BadValue("user"),
            ),
            (
                "veil1&board=b:1&meeting=m&user=a&user=b",
                LinkError::Repeated("user"),
            ),
            (
                "veil1&board=b:1&meeting=m&media=srtp",
                LinkError::BadValue("media"),
            ),
            (
                "veil1&board=b:1&meeting=m&media=rtp&media=rtp",
                LinkError::Repeated("media"),
            ),
            (
                "veil1&board=b:1&meeting=m&board_sha256=+1",
                LinkError::BadValue("board_sha256"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&MeetingLink::parse(text).unwrap_err(), want, "{text}");
        }
        // A secret whose '=' was lost is not echoed.
        let lost = format!("veil1&board=b:1&meeting=m&invite{}", "01".repeat(32));
        assert_eq!(
            MeetingLink::parse(&lost).unwrap_err(),
            LinkError::Malformed("invite".into())
        );
        let long = format!("veil1&board=b:1&meeting={}", "m".repeat(257));
        assert_eq!(
            MeetingLink::parse(&long).unwrap_err(),
            LinkError::BadValue("meeting")
        );
        let user = |n| format!("veil1&board=b:1&meeting=m&user={}", "u".repeat(n));
        assert!(MeetingLink::parse(&user(MAX_USER)).is_ok());
        assert_eq!(
            MeetingLink::parse(&user(MAX_USER + 1)).unwrap_err(),
            LinkError::BadValue("user")
        );
    }
}
