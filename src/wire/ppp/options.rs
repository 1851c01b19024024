//! Configuration options (RFC 1661 §6): Type, Length, Data.
//!
//! ```text
//! |     Type      |    Length     |    Data ...
//! ```
//!
//! Length counts Type and Length, so it is at least two. The iterator hands
//! out each option with its raw bytes: RFC 1661 §5.4 wants a Configure-Reject
//! to carry the rejected options "unmodified", and §5.2 wants a
//! Configure-Ack to repeat the request's options exactly, so the typed
//! parsers never have to re-encode what the peer sent.

use super::PppWireError;

/// One option borrowed from a Configure-* packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Type.
    pub kind: u8,
    /// Data (Length − 2 octets).
    pub data: &'a [u8],
    /// The whole option as received, Type and Length included.
    pub bytes: &'a [u8],
}

/// Iterator over an option list.
///
/// Yields `Err` once for a malformed option and then stops: the lengths of
/// anything after it can no longer be trusted.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterate over `data`, the Data field of a Configure-* packet.
    pub fn new(data: &'a [u8]) -> Self {
        OptionIter {
            rest: data,
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>, PppWireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = match self.rest {
            [_] => Err(PppWireError::Truncated),
            [_, length, ..] if *length < 2 => Err(PppWireError::BadLength),
            [kind, length, ..] => match self.rest.split_at_checked(usize::from(*length)) {
                Some((bytes, rest)) => {
                    self.rest = rest;
                    return Some(Ok(RawOption {
                        kind: *kind,
                        data: &bytes[2..],
                        bytes,
                    }));
                }
                None => Err(PppWireError::Truncated),
            },
            [] => return None,
        };
        self.failed = true;
        Some(result)
    }
}

/// Appends options to a buffer.
#[derive(Debug)]
pub struct OptionWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> OptionWriter<'b> {
    /// Append to the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        OptionWriter { buf }
    }

    /// Append one option; its data must fit the one-octet Length.
    pub fn push(&mut self, kind: u8, data: &[u8]) -> Result<(), PppWireError> {
        let length = u8::try_from(data.len() + 2).map_err(|_| PppWireError::FieldTooLong)?;
        self.buf.push(kind);
        self.buf.push(length);
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Append an option exactly as it was received.
    pub fn push_raw(&mut self, option: &RawOption<'_>) {
        self.buf.extend_from_slice(option.bytes);
    }
}

/// A typed option of one control protocol (LCP, IPCP, IPv6CP).
pub trait CpOption: Sized {
    /// Read one raw option. Unknown types succeed as an `Unknown` value;
    /// a known type with the wrong length is `OptionLength`.
    fn parse(raw: &RawOption<'_>) -> Result<Self, PppWireError>;

    /// The option type.
    fn kind(&self) -> u8;

    /// Append the option.
    fn emit(&self, writer: &mut OptionWriter<'_>) -> Result<(), PppWireError>;
}

/// Parse a whole option list into typed options; the first error wins.
pub fn parse_all<O: CpOption>(data: &[u8]) -> Result<Vec<O>, PppWireError> {
    OptionIter::new(data)
        .map(|raw| raw.and_then(|raw| O::parse(&raw)))
        .collect()
}

/// Emit a list of typed options.
pub fn emit_all<O: CpOption>(options: &[O], out: &mut Vec<u8>) -> Result<(), PppWireError> {
    let start = out.len();
    let mut writer = OptionWriter::new(out);
    for option in options {
        if let Err(e) = option.emit(&mut writer) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ppp::hex;

    #[test]
    fn raw_options_from_capture() {
        // l2tpns's LCP Configure-Request options (xl2tpd capture frame 9).
        let data = hex(concat!(
            "010405b6",       // MRU 1462
            "0305c22305",     // auth CHAP MD5
            "05066b0900f4",   // magic
            "1104064e",       // MRRU 1614
            "1307020a6200fe", // endpoint discriminator, class 2, 10.98.0.254
        ));
        let options: Vec<_> = OptionIter::new(&data).collect::<Result<_, _>>().unwrap();
        let kinds: Vec<u8> = options.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [1, 3, 5, 0x11, 0x13]);
        assert_eq!(options[4].data, &hex("020a6200fe")[..]);
        let mut out = vec![];
        let mut writer = OptionWriter::new(&mut out);
        for option in &options {
            writer.push_raw(option);
        }
        assert_eq!(out, data);
        let mut again = vec![];
        let mut writer = OptionWriter::new(&mut again);
        for option in &options {
            writer.push(option.kind, option.data).unwrap();
        }
        assert_eq!(again, data);
    }

    #[test]
    fn stops_after_malformed() {
        let mut iter = OptionIter::new(&[7, 1, 8, 2]);
        assert_eq!(iter.next(), Some(Err(PppWireError::BadLength)));
        assert_eq!(iter.next(), None);
        let mut iter = OptionIter::new(&[7, 2, 8]);
        assert!(matches!(iter.next(), Some(Ok(RawOption { kind: 7, .. }))));
        assert_eq!(iter.next(), Some(Err(PppWireError::Truncated)));
        assert_eq!(iter.next(), None);
        assert_eq!(
            OptionIter::new(&[1, 4, 5]).next(),
            Some(Err(PppWireError::Truncated))
        );
        assert_eq!(OptionIter::new(&[]).next(), None);
    }

    #[test]
    fn writer_limits() {
        let mut out = vec![];
        assert_eq!(
            OptionWriter::new(&mut out).push(1, &[0; 254]),
            Err(PppWireError::FieldTooLong)
        );
        assert!(out.is_empty());
        OptionWriter::new(&mut out).push(1, &[0; 253]).unwrap();
        assert_eq!(out[1], 255);
    }
}
