use super::*;

#[test]
fn a_response_is_the_reply_or_the_error_never_both_or_neither() {
    let ok = serde_json::to_string(&ResponseFrame::Ok(Reply::Done)).expect("json");
    assert_eq!(ok, r#"{"v":1,"ok":{"type":"done"}}"#);
    let err = serde_json::to_string(&ResponseFrame::Err(ErrorReply {
        code: ErrorCode::Locked,
        message: "locked".into(),
    }))
    .expect("json");
    assert_eq!(err, r#"{"v":1,"err":{"code":"locked","message":"locked"}}"#);
    for line in [&ok, &err] {
        let back: ResponseFrame = serde_json::from_str(line).expect("round trip");
        assert_eq!(&serde_json::to_string(&back).expect("json"), line);
    }
    for bad in [
        r#"{"v":1}"#,
        r#"{"v":1,"ok":{"type":"done"},"err":{"code":"locked","message":"m"}}"#,
        r#"{"v":2,"ok":{"type":"done"}}"#,
        r#"{"v":1,"ok":{"type":"done"},"x":1}"#,
    ] {
        assert!(
            serde_json::from_str::<ResponseFrame>(bad).is_err(),
            "{bad} must not parse"
        );
    }
}

#[test]
fn strict_parsing() {
    let ok: RequestFrame =
        serde_json::from_str(r#"{"v":1,"req":{"op":"cred_aws","profile":"dev"}}"#).expect("valid");
    assert!(matches!(ok.req, Request::CredAws { .. }));
    for bad in [
        r#"{"v":1,"req":{"op":"cred_aws","profile":"dev","x":1}}"#,
        r#"{"v":1,"req":{"op":"nope"}}"#,
        r#"{"v":1,"req":{"op":"list"},"extra":true}"#,
        r#"{"v":1,"req":{"op":"list","evil":1}}"#,
        r#"{"v":1,"req":{"op":"ping","x":null}}"#,
        r#"{"req":{"op":"list"}}"#,
        r#"[1,2,3]"#,
    ] {
        assert!(serde_json::from_str::<RequestFrame>(bad).is_err(), "{bad}");
    }
}

#[test]
fn secrets_are_redacted_in_debug() {
    let req = Request::Unlock {
        passphrase: WireSecret::new("hunter2-hunter2".into()),
        factor: FactorInput::Totp {
            code: WireSecret::new("123456".into()),
        },
        window: false,
    };
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("123456"), "{dbg}");
}

proptest::proptest! {
    /// Hostile bytes never panic the parser, and whatever parses re-encodes to a frame
    /// that parses again (no lossy acceptance).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        if let Ok(frame) = serde_json::from_slice::<RequestFrame>(&bytes) {
            let again = serde_json::to_vec(&frame).expect("encode");
            proptest::prop_assert!(serde_json::from_slice::<RequestFrame>(&again).is_ok());
        }
    }

    /// Near-valid frames with an extra field are always refused.
    #[test]
    fn unknown_fields_are_always_refused(key in "[a-z_]{1,12}") {
        proptest::prop_assume!(key != "profile" && key != "mfa_code" && key != "op");
        let text = format!(r#"{{"v":1,"req":{{"op":"cred_aws","profile":"p","{key}":1}}}}"#);
        proptest::prop_assert!(serde_json::from_str::<RequestFrame>(&text).is_err());
    }
}
