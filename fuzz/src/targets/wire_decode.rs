//! `wire_decode`: our cloud-proxy protocol's decoders on arbitrary bytes.
//!
//! Properties, for any input:
//!
//! 1. [`Message::decode`], [`Message::decode_datagram`] and [`FrameReader`] never panic.
//! 2. Whatever decodes re-encodes to exactly the bytes it was decoded from, and
//!    `encoded_len` is that length.
//! 3. `Incomplete { needed }` promises more than what was given; a datagram decoder never says
//!    `Incomplete`, and accepts exactly when the stream decoder takes the whole input.
//! 4. A [`FrameReader`] fed the input as a stream, in any chunking, pops exactly the messages
//!    that repeated [`Message::decode`] finds, then the same error (sticky) or, on a partial
//!    message, nothing, keeping the partial bytes for [`FrameReader::take_rest`]; its buffer
//!    never exceeds [`FrameReader::CAPACITY`].

use cloudproxy_core::wire::{DecodeError, FrameReader, Message};

/// Chunk sizes the stream is cut into, cycled from an offset picked by the input's length.
const CHUNKS: &[usize] = &[1, 5, 64, 2, 1500, 3, 6, 700, 4096, 17];

/// The target: see the module docs.
pub fn run(data: &[u8]) {
    check_stream_decode(data);
    check_datagram_decode(data);
    check_frame_reader(data);
}

fn check_stream_decode(data: &[u8]) {
    match Message::decode(data) {
        Ok((msg, used)) => {
            assert!(
                used <= data.len(),
                "decode used {used} of {} bytes",
                data.len()
            );
            assert_round_trip(&msg, &data[..used]);
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(
                needed > data.len(),
                "Incomplete needs {needed} with {} given",
                data.len()
            );
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

fn check_datagram_decode(data: &[u8]) {
    let stream = Message::decode(data);
    match Message::decode_datagram(data) {
        Ok(msg) => {
            assert_round_trip(&msg, data);
            assert_eq!(
                stream,
                Ok((msg, data.len())),
                "datagram and stream decoders disagree"
            );
        }
        Err(err) => {
            assert!(!err.is_incomplete(), "decode_datagram returned {err:?}");
            assert!(
                !matches!(stream, Ok((_, used)) if used == data.len()),
                "the stream decoder took the whole datagram, the datagram decoder said {err:?}"
            );
            let _ = err.error_code();
        }
    }
}

fn assert_round_trip(msg: &Message, bytes: &[u8]) {
    let encoded = match msg.to_bytes() {
        Ok(encoded) => encoded,
        Err(err) => panic!("decoded {msg:?} does not encode: {err}"),
    };
    assert_eq!(encoded, bytes, "{msg:?} re-encodes differently");
    assert_eq!(msg.encoded_len(), bytes.len(), "{msg:?}: encoded_len");
}

/// How a stream of bytes ends.
#[derive(Debug, PartialEq)]
enum End {
    /// A partial message: these bytes are left.
    Partial(Vec<u8>),
    /// An invalid message.
    Error(DecodeError),
}

/// What repeated [`Message::decode`] makes of a stream.
fn reference(stream: &[u8]) -> (Vec<Message>, End) {
    let mut messages = Vec::new();
    let mut rest = stream;
    loop {
        match Message::decode(rest) {
            Ok((msg, used)) if used > 0 => {
                messages.push(msg);
                rest = &rest[used..];
            }
            Ok((msg, _)) => panic!("{msg:?} decoded from zero bytes"),
            Err(DecodeError::Incomplete { .. }) => return (messages, End::Partial(rest.to_vec())),
            Err(err) => return (messages, End::Error(err)),
        }
    }
}

fn check_frame_reader(data: &[u8]) {
    let (expected, expected_end) = reference(data);
    let mut reader = FrameReader::new();
    let mut popped = Vec::new();
    let mut error = None;
    let mut rest = data;
    let mut sizes = CHUNKS.iter().cycle().skip(data.len() % CHUNKS.len());
    'feed: while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(1).min(rest.len());
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() {
            let taken = reader.push(chunk);
            assert!(taken <= chunk.len());
            assert!(
                reader.buffered() <= FrameReader::CAPACITY,
                "buffer over capacity"
            );
            chunk = &chunk[taken..];
            let mut progress = taken > 0;
            loop {
                match reader.pop() {
                    Ok(Some(msg)) => {
                        popped.push(msg);
                        progress = true;
                    }
                    Ok(None) => break,
                    Err(err) => {
                        error = Some(err);
                        break 'feed;
                    }
                }
            }
            assert!(progress, "a full reader did not pop");
        }
    }
    assert_eq!(
        popped, expected,
        "the frame reader and the decoder disagree"
    );
    match expected_end {
        End::Error(err) => {
            assert_eq!(error.as_ref(), Some(&err), "the frame reader's error");
            // Errors are sticky.
            assert_eq!(reader.pop(), Err(err));
        }
        End::Partial(partial) => {
            assert_eq!(error, None, "the frame reader failed on a valid prefix");
            assert_eq!(reader.pop(), Ok(None));
            assert_eq!(reader.take_rest(), partial, "take_rest");
            assert_eq!(reader.buffered(), 0);
        }
    }
}
