//! Properties of the codecs: round trips, prefixes, and any input whatsoever.

use proptest::sample::Index;

use super::*;

/// Runs every decoder on `input`, checking what each may do with it.
fn check_all_decoders(input: &[u8]) {
    check_any_input::<Greeting>(input);
    check_any_input::<MethodSelection>(input);
    check_any_input::<UserPassRequest>(input);
    check_any_input::<UserPassReply>(input);
    check_any_input::<Request>(input);
    check_any_input::<Reply>(input);
    check_any_input::<Address>(input);
    check_any_input::<UdpHeader>(input);
    match decode_udp_datagram(input) {
        Ok((dst, payload)) => {
            let mut out = Vec::new();
            encode_udp_datagram(&dst, payload, &mut out);
            assert_eq!(out, input);
        }
        Err(Socks5Error::Incomplete { .. }) => panic!("a datagram is never incomplete"),
        Err(_) => {}
    }
}

/// The encoding of a valid message of any kind.
fn any_encoding() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        greeting().prop_map(|v| to_bytes(&v)),
        method().prop_map(|method| to_bytes(&MethodSelection { method })),
        credentials().prop_map(|credentials| to_bytes(&UserPassRequest { credentials })),
        any::<u8>().prop_map(|status| to_bytes(&UserPassReply { status })),
        request().prop_map(|v| to_bytes(&v)),
        reply().prop_map(|v| to_bytes(&v)),
        (any::<u8>(), address()).prop_map(|(frag, dst)| to_bytes(&UdpHeader { frag, dst })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn greeting_round_trips(value in greeting()) {
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn method_selection_round_trips(method in method()) {
        let value = MethodSelection { method };
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn user_pass_request_round_trips(credentials in credentials()) {
        let value = UserPassRequest { credentials };
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn user_pass_reply_round_trips(status in any::<u8>()) {
        let value = UserPassReply { status };
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn request_round_trips(value in request()) {
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn reply_round_trips(value in reply()) {
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn address_round_trips(value in address()) {
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn udp_header_round_trips(frag in any::<u8>(), dst in address()) {
        let value = UdpHeader { frag, dst };
        check_valid(&to_bytes(&value), &value);
    }

    #[test]
    fn udp_datagram_round_trips(
        dst in address(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut dgram = Vec::new();
        encode_udp_datagram(&dst, &payload, &mut dgram);
        let header = UdpHeader { frag: 0, dst: dst.clone() };
        prop_assert_eq!(&dgram[..header.encoded_len()], &to_bytes(&header)[..]);
        prop_assert_eq!(decode_udp_datagram(&dgram), Ok((dst, &payload[..])));
        // Any other FRAG is dropped.
        dgram[2] = 1;
        prop_assert_eq!(decode_udp_datagram(&dgram), Err(Socks5Error::Fragmented { frag: 1 }));
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_all_decoders(&input);
    }

    /// Inputs near valid ones: a valid encoding with one byte changed, cut anywhere, followed by
    /// anything. Whatever decodes must re-encode to exactly the bytes consumed.
    #[test]
    fn near_valid_bytes(
        mut bytes in any_encoding(),
        at in any::<Index>(),
        value in any::<u8>(),
        cut in any::<Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let at = at.index(bytes.len());
        bytes[at] = value;
        bytes.truncate(cut.index(bytes.len() + 1));
        check_all_decoders(&bytes);
        bytes.extend_from_slice(&tail);
        check_all_decoders(&bytes);
    }
}
