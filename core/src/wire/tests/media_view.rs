//! The borrowed media codec against the owned one: same decodings, same refusals, same bytes.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;

use super::props::{arb_mangled_frame, arb_message, arb_socket_addr};
use super::*;

/// A `MediaData` frame (payload up to 1,500 bytes), mangled like [`arb_mangled_frame`]:
/// bytes overwritten (the length field, the family byte...), cut, extended.
fn arb_mangled_media() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u64>(),
        arb_socket_addr(),
        prop::collection::vec(any::<u8>(), 0..=MAX_MEDIA_PAYLOAD),
        prop::collection::vec((0..40usize, any::<u8>()), 0..3),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(session_id, peer, payload, edits, cut, tail)| {
            let msg = Message::MediaData {
                session_id,
                peer,
                payload,
            };
            let mut bytes = msg.to_bytes().unwrap();
            for (at, value) in edits {
                let i = at.min(bytes.len() - 1);
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&tail);
            bytes
        })
}

/// The view and the owned decoder agree on `bytes`: the same message or the same error.
fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let owned = Message::decode_datagram(bytes);
    let view = DatagramView::decode(bytes);
    prop_assert_eq!(
        view.as_ref()
            .map(DatagramView::to_message)
            .map_err(Clone::clone),
        owned.clone()
    );
    // Only a MediaData is borrowed, and its payload is the datagram's tail.
    if let Ok(v) = &view {
        let is_media = matches!(owned, Ok(Message::MediaData { .. }));
        prop_assert_eq!(matches!(v, DatagramView::Media(_)), is_media);
        if let DatagramView::Media(frame) = v {
            prop_assert!(bytes.ends_with(frame.payload));
            prop_assert_eq!(v.session_id(), owned.unwrap().session_id());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn view_agrees_on_mangled_media(bytes in arb_mangled_media()) {
        agree(&bytes)?;
    }

    #[test]
    fn view_agrees_on_any_mangled_frame(bytes in arb_mangled_frame()) {
        agree(&bytes)?;
    }

    #[test]
    fn view_agrees_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        agree(&bytes)?;
    }

    #[test]
    fn view_agrees_on_valid_messages(msg in arb_message()) {
        agree(&msg.to_bytes().unwrap())?;
    }

    /// The encoder writes the owned codec's bytes into a reused buffer, refuses what it
    /// refuses (leaving the buffer as it was), and never grows a buffer of
    /// MAX_MEDIA_FRAME_LEN.
    #[test]
    fn encoder_writes_the_owned_bytes(
        session_id in any::<u64>(),
        peer in arb_socket_addr(),
        payload in prop::collection::vec(any::<u8>(), 0..=MAX_MEDIA_PAYLOAD + 40),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let frame = MediaFrame { session_id, peer, payload: &payload };
        let owned = Message::MediaData { session_id, peer, payload: payload.clone() };
        let mut buf = Vec::with_capacity(MAX_MEDIA_FRAME_LEN);
        buf.extend_from_slice(&junk);
        let ptr = buf.as_ptr();
        match (frame.encode_into(&mut buf), owned.to_bytes()) {
            (Ok(()), Ok(bytes)) => {
                prop_assert_eq!(&buf, &bytes);
                prop_assert_eq!(buf.len(), frame.encoded_len());
                prop_assert_eq!(buf.capacity(), MAX_MEDIA_FRAME_LEN);
                prop_assert_eq!(buf.as_ptr(), ptr, "the buffer was reallocated");
            }
            (Err(e), Err(want)) => {
                prop_assert_eq!(e, want);
                prop_assert_eq!(&buf, &junk, "a refused frame changed the buffer");
            }
            (got, want) => prop_assert!(false, "encoder {got:?}, owned codec {want:?}"),
        }
    }
}

/// The largest media frame is exactly MAX_MEDIA_FRAME_LEN, and is the largest MediaData body
/// the header bounds allow.
#[test]
fn largest_media_frame() {
    let peer = "[2001:db8::1]:9".parse().unwrap();
    let payload = vec![7; MAX_MEDIA_PAYLOAD];
    let frame = MediaFrame {
        session_id: 1,
        peer,
        payload: &payload,
    };
    assert_eq!(frame.encoded_len(), MAX_MEDIA_FRAME_LEN);
    assert_eq!(
        HEADER_LEN + *MessageType::MediaData.body_len_range().end(),
        MAX_MEDIA_FRAME_LEN
    );
    let mut buf = Vec::new();
    frame.encode_into(&mut buf).unwrap();
    assert_eq!(DatagramView::decode(&buf), Ok(DatagramView::Media(frame)));
}
