//! Raw Attribute-Value Pairs (RFC 2661 §4.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! |         Attribute Type        |        Attribute Value...
//! ```
//!
//! The reader yields borrowed AVPs and never panics; the writer appends to a
//! `Vec<u8>` and patches each AVP's length after its value is written.

use super::WireError;

/// Mandatory bit.
pub const FLAG_MANDATORY: u16 = 0x8000;
/// Hidden bit.
pub const FLAG_HIDDEN: u16 = 0x4000;
/// Reserved bits; §4.1: an AVP with any of them set "MUST be treated as an
/// unrecognized AVP".
pub const FLAG_RESERVED: u16 = 0x3c00;
/// The 10-bit length, which counts the 6-byte AVP header.
pub const LENGTH_MASK: u16 = 0x03ff;
/// Size of the fixed AVP header.
pub const HEADER_LEN: usize = 6;
/// Largest AVP (the length field has 10 bits).
pub const MAX_LEN: usize = LENGTH_MASK as usize;
/// Vendor ID of the IETF attribute space.
pub const VENDOR_IETF: u16 = 0;

/// The header fields of one AVP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvpHeader {
    /// M bit: the receiver must understand this AVP.
    pub mandatory: bool,
    /// H bit: the value is hidden (§4.3).
    pub hidden: bool,
    /// Any reserved bit was set.
    pub reserved_bits: bool,
    /// Vendor ID (0 = IETF).
    pub vendor_id: u16,
    /// Attribute type within the vendor's space.
    pub attr_type: u16,
}

/// One AVP borrowed from a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAvp<'a> {
    /// Header fields.
    pub header: AvpHeader,
    /// The value exactly as on the wire (still hidden when `header.hidden`).
    pub value: &'a [u8],
}

/// Iterator over the AVPs of a control message body.
///
/// Yields `Err` once for a malformed AVP and then stops, since the lengths of
/// everything after it can no longer be trusted.
#[derive(Debug, Clone)]
pub struct AvpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> AvpIter<'a> {
    /// Iterate over `body`, the bytes after the L2TP header.
    pub fn new(body: &'a [u8]) -> Self {
        AvpIter {
            rest: body,
            failed: false,
        }
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Result<RawAvp<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let Some(fixed) = self.rest.get(..HEADER_LEN) else {
            self.failed = true;
            return Some(Err(WireError::Truncated));
        };
        let word = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = usize::from(word & LENGTH_MASK);
        if length < HEADER_LEN {
            self.failed = true;
            return Some(Err(WireError::BadLength));
        }
        let Some(whole) = self.rest.get(..length) else {
            self.failed = true;
            return Some(Err(WireError::Truncated));
        };
        self.rest = &self.rest[length..];
        Some(Ok(RawAvp {
            header: AvpHeader {
                mandatory: word & FLAG_MANDATORY != 0,
                hidden: word & FLAG_HIDDEN != 0,
                reserved_bits: word & FLAG_RESERVED != 0,
                vendor_id: u16::from_be_bytes([fixed[2], fixed[3]]),
                attr_type: u16::from_be_bytes([fixed[4], fixed[5]]),
            },
            value: &whole[HEADER_LEN..],
        }))
    }
}

/// Appends AVPs to a buffer.
#[derive(Debug)]
pub struct AvpWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> AvpWriter<'b> {
    /// Append to the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        AvpWriter { buf }
    }

    /// Append one AVP with the given value bytes.
    pub fn push(&mut self, header: AvpHeader, value: &[u8]) -> Result<(), WireError> {
        self.push_with(header, |out| out.extend_from_slice(value))
    }

    /// Append one AVP whose value `fill` writes; the length is patched after.
    pub fn push_with(
        &mut self,
        header: AvpHeader,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), WireError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&header.vendor_id.to_be_bytes());
        self.buf.extend_from_slice(&header.attr_type.to_be_bytes());
        fill(self.buf);
        let length = self.buf.len() - start;
        if length > MAX_LEN {
            self.buf.truncate(start);
            return Err(WireError::BadLength);
        }
        let mut word = length as u16;
        if header.mandatory {
            word |= FLAG_MANDATORY;
        }
        if header.hidden {
            word |= FLAG_HIDDEN;
        }
        if header.reserved_bits {
            word |= FLAG_RESERVED;
        }
        self.buf[start..start + 2].copy_from_slice(&word.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_message_type() {
        // Message Type = SCCRQ (1), mandatory.
        let bytes = [
            0x80, 0x08, // M, length 8
            0x00, 0x00, // vendor IETF
            0x00, 0x00, // attribute 0 (Message Type)
            0x00, 0x01, // SCCRQ
        ];
        let avps: Vec<_> = AvpIter::new(&bytes).collect();
        assert_eq!(avps.len(), 1);
        let avp = avps[0].unwrap();
        assert!(avp.header.mandatory && !avp.header.hidden);
        assert_eq!(avp.header.attr_type, 0);
        assert_eq!(avp.value, &[0, 1]);

        let mut out = vec![];
        AvpWriter::new(&mut out)
            .push(avp.header, avp.value)
            .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn stops_after_malformed() {
        let bytes = [0x80, 0x04, 0, 0, 0, 0, 0x80, 0x08];
        let mut iter = AvpIter::new(&bytes);
        assert_eq!(iter.next(), Some(Err(WireError::BadLength)));
        assert_eq!(iter.next(), None);
        let mut iter = AvpIter::new(&bytes[..3]);
        assert_eq!(iter.next(), Some(Err(WireError::Truncated)));
        let bytes = [0x80, 0x09, 0, 0, 0, 0, 0, 1];
        assert_eq!(AvpIter::new(&bytes).next(), Some(Err(WireError::Truncated)));
    }

    #[test]
    fn writer_rejects_oversized_value() {
        let mut out = vec![1, 2];
        let header = AvpHeader {
            mandatory: false,
            hidden: false,
            reserved_bits: false,
            vendor_id: 0,
            attr_type: 7,
        };
        assert_eq!(
            AvpWriter::new(&mut out).push(header, &[0; 1100]),
            Err(WireError::BadLength)
        );
        assert_eq!(out, vec![1, 2]);
    }
}
