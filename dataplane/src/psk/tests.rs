use super::*;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn file(edit: impl Fn(&str) -> String) -> Result<PskFile, PskError> {
    let text = format!(
        "meeting_id = \"lab-1\"\nmeeting_uuid = \"uuid-9\"\nmk_seq = 7\nmeeting_key = \"{KEY}\"\n\n[roster]\n0 = \"alice\"\n1 = \"bob\"\n"
    );
    PskFile::parse(&edit(&text))
}

#[test]
fn a_good_file_parses_and_prints_back() {
    let psk = file(str::to_owned).unwrap();
    assert_eq!(psk.meeting_id, b"lab-1");
    assert_eq!(psk.meeting_uuid, b"uuid-9");
    assert_eq!(psk.mk_seq, 7);
    assert_eq!(psk.meeting_key[31], 0x1f);
    assert_eq!(psk.roster[&1], b"bob");
    assert_eq!(PskFile::parse(&psk.to_toml()).unwrap(), psk);
    let key = psk.epoch_key(Millis(5));
    assert_eq!(
        (key.mk_seq, key.activate_at, key.roster.len()),
        (7, Millis(5), 2)
    );
    assert!(
        !format!("{psk:?}").contains("0001020304"),
        "Debug must not print the key"
    );
}

type Edit = Box<dyn Fn(&str) -> String>;

#[test]
fn every_malformed_field_has_its_error() {
    let cases: Vec<(Edit, PskError)> = vec![
        (
            Box::new(|t| t.replace("mk_seq = 7", "mk_seq = ")),
            PskError::Syntax(String::new()),
        ),
        (
            Box::new(|t| t.replace("mk_seq = 7\n", "")),
            PskError::Missing("mk_seq"),
        ),
        (
            Box::new(|t| t.replace("meeting_id = \"lab-1\"\n", "")),
            PskError::Missing("meeting_id"),
        ),
        (
            Box::new(|t| t.replace("mk_seq = 7", "mk_seq = \"7\"")),
            PskError::WrongType {
                field: "mk_seq",
                expected: "an integer",
            },
        ),
        (
            Box::new(|t| t.replace("mk_seq = 7", "mk_seq = -1")),
            PskError::MkSeqOutOfRange(-1),
        ),
        (
            Box::new(|t| t.replace("mk_seq = 7", "mk_seq = 4294967296")),
            PskError::MkSeqOutOfRange(1 << 32),
        ),
        (
            Box::new(|t| t.replace(KEY, &KEY[..62])),
            PskError::KeyLength(31),
        ),
        (
            Box::new(|t| t.replace(KEY, &format!("{KEY}00"))),
            PskError::KeyLength(33),
        ),
        (
            Box::new(|t| t.replace(KEY, &KEY.replace('0', "g"))),
            PskError::KeyNotHex,
        ),
        (
            Box::new(|t| t.replace(KEY, &KEY[..63])),
            PskError::KeyNotHex,
        ),
        (
            Box::new(|t| t.replace(&format!("\"{KEY}\""), "32")),
            PskError::WrongType {
                field: "meeting_key",
                expected: "a hex string",
            },
        ),
        (
            Box::new(|t| t.replace("\"lab-1\"", "\"\"")),
            PskError::BadLength("meeting_id"),
        ),
        (
            Box::new(|t| t.replace("\"uuid-9\"", "9")),
            PskError::WrongType {
                field: "meeting_uuid",
                expected: "a string",
            },
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "x = \"bob\"")),
            PskError::BadSlot("x".into()),
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "01 = \"bob\"")),
            PskError::BadSlot("01".into()),
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "4294967296 = \"bob\"")),
            PskError::BadSlot("4294967296".into()),
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "65536 = \"bob\"")),
            PskError::SlotOutOfRange(65536),
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "1 = 5")),
            PskError::BadSenderId(1),
        ),
        (
            Box::new(|t| t.replace("1 = \"bob\"", "1 = \"\"")),
            PskError::BadSenderId(1),
        ),
        (
            Box::new(|t| t.replace("0 = \"alice\"\n1 = \"bob\"\n", "")),
            PskError::EmptyRoster,
        ),
        (
            Box::new(|t| t.replace("[roster]", "roster = 1\n[other]")),
            PskError::UnknownField("other".into()),
        ),
        (
            Box::new(|t| t.replace("[roster]\n0 = \"alice\"\n1 = \"bob\"\n", "roster = 3\n")),
            PskError::WrongType {
                field: "roster",
                expected: "a table of slot = \"sender ID\"",
            },
        ),
        (
            Box::new(|t| t.replace("mk_seq", "mkseq")),
            PskError::UnknownField("mkseq".into()),
        ),
    ];
    for (i, (edit, expected)) in cases.into_iter().enumerate() {
        let got = file(edit).unwrap_err();
        match (&got, &expected) {
            (PskError::Syntax(_), PskError::Syntax(_)) => {}
            _ => assert_eq!(got, expected, "case {i}"),
        }
    }
}

#[test]
fn syntax_errors_do_not_echo_the_key() {
    let err = file(|t| t.replace(KEY, &format!("{KEY}\n oops"))).unwrap_err();
    assert!(matches!(err, PskError::Syntax(_)));
    assert!(!err.to_string().contains(&KEY[..16]), "{err}");
}

#[test]
fn a_key_pasted_as_a_name_is_not_echoed_whole() {
    // Found by the psk_file fuzz target: unknown field names and roster slots are echoed into
    // the error, so a key pasted where a name belongs went into the log.
    let as_field = file(|t| t.replace("[roster]", &format!("{KEY} = 1\n\n[roster]")))
        .unwrap_err()
        .to_string();
    assert!(matches!(
        file(|t| t.replace("[roster]", &format!("{KEY} = 1\n\n[roster]"))),
        Err(PskError::UnknownField(_))
    ));
    let as_slot = file(|t| t.replace("1 = \"bob\"", &format!("{KEY} = \"bob\"")))
        .unwrap_err()
        .to_string();
    for message in [as_field, as_slot] {
        assert!(!message.contains(KEY), "{message}");
        assert!(
            message.contains(&KEY[..24]),
            "the start still says which name: {message}"
        );
    }
}
