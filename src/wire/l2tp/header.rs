//! The L2TPv2 header (RFC 2661 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//! |           Tunnel ID           |           Session ID          |
//! |             Ns (opt)          |             Nr (opt)          |
//! |      Offset Size (opt)        |    Offset pad... (opt)
//! ```
//!
//! Every optional field moves the ones after it, so the view computes
//! offsets from the flags word instead of declaring fixed ranges.

use super::WireError;

/// Bits of the first 16-bit word.
pub mod flags {
    /// Message is a control message.
    pub const TYPE: u16 = 0x8000;
    /// Length field present.
    pub const LENGTH: u16 = 0x4000;
    /// Ns and Nr present.
    pub const SEQUENCE: u16 = 0x0800;
    /// Offset Size present.
    pub const OFFSET: u16 = 0x0200;
    /// Data message should get preferential treatment.
    pub const PRIORITY: u16 = 0x0100;
    /// Version nibble.
    pub const VERSION_MASK: u16 = 0x000f;
    /// Bits that RFC 2661 §3.1 reserves (sender sets 0, receiver ignores).
    pub const RESERVED_MASK: u16 = 0x30f0 | 0x0400;
}

/// The only version this codec speaks (RFC 2661 §3.1: "Ver MUST be 2").
pub const VERSION: u16 = 2;

/// Zero-copy view of an L2TP packet (header + payload).
///
/// After [`Packet::new_checked`] succeeds, no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without validation; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer and validate every length the accessors rely on.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the flags, the version and every length the accessors read.
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < 2 {
            return Err(WireError::Truncated);
        }
        let word = self.flags_word();
        if word & flags::VERSION_MASK != VERSION {
            return Err(WireError::BadVersion((word & flags::VERSION_MASK) as u8));
        }
        // §3.1: control messages MUST have L and S set and O clear.
        if word & flags::TYPE != 0
            && (word & flags::LENGTH == 0
                || word & flags::SEQUENCE == 0
                || word & flags::OFFSET != 0)
        {
            return Err(WireError::BadControlFlags);
        }
        let fixed = self.fixed_len();
        if data.len() < fixed {
            return Err(WireError::Truncated);
        }
        let end = if self.has_length() {
            let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
            if length < fixed {
                return Err(WireError::BadLength);
            }
            if length > data.len() {
                return Err(WireError::Truncated);
            }
            length
        } else {
            data.len()
        };
        if self.has_offset() {
            let at = fixed - 2;
            let pad = usize::from(u16::from_be_bytes([data[at], data[at + 1]]));
            if fixed + pad > end {
                return Err(WireError::BadLength);
            }
        }
        Ok(())
    }

    /// Consume the view, giving back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word_at(&self, at: usize) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[at], data[at + 1]])
    }

    /// The first 16-bit word: flags and version.
    pub fn flags_word(&self) -> u16 {
        self.word_at(0)
    }

    /// T bit: a control message.
    pub fn is_control(&self) -> bool {
        self.flags_word() & flags::TYPE != 0
    }
    /// L bit: the Length field is present.
    pub fn has_length(&self) -> bool {
        self.flags_word() & flags::LENGTH != 0
    }
    /// S bit: Ns and Nr are present.
    pub fn has_sequence(&self) -> bool {
        self.flags_word() & flags::SEQUENCE != 0
    }
    /// O bit: Offset Size is present.
    pub fn has_offset(&self) -> bool {
        self.flags_word() & flags::OFFSET != 0
    }
    /// P bit: preferential treatment for data messages.
    pub fn priority(&self) -> bool {
        self.flags_word() & flags::PRIORITY != 0
    }

    /// Bytes up to and including Offset Size (but not the pad).
    fn fixed_len(&self) -> usize {
        let mut len = 6;
        if self.has_length() {
            len += 2;
        }
        if self.has_sequence() {
            len += 4;
        }
        if self.has_offset() {
            len += 2;
        }
        len
    }

    fn ids_at(&self) -> usize {
        if self.has_length() {
            4
        } else {
            2
        }
    }

    /// The Length field, when present.
    pub fn length(&self) -> Option<u16> {
        self.has_length().then(|| self.word_at(2))
    }
    /// Tunnel ID: the receiver's identifier for the control connection.
    pub fn tunnel_id(&self) -> u16 {
        self.word_at(self.ids_at())
    }
    /// Session ID: the receiver's identifier for the session (0 = tunnel).
    pub fn session_id(&self) -> u16 {
        self.word_at(self.ids_at() + 2)
    }
    /// Ns, when the S bit is set.
    pub fn ns(&self) -> Option<u16> {
        self.has_sequence().then(|| self.word_at(self.ids_at() + 4))
    }
    /// Nr, when the S bit is set.
    pub fn nr(&self) -> Option<u16> {
        self.has_sequence().then(|| self.word_at(self.ids_at() + 6))
    }
    /// Offset Size, when the O bit is set.
    pub fn offset_size(&self) -> Option<u16> {
        self.has_offset()
            .then(|| self.word_at(self.fixed_len() - 2))
    }

    /// Length of the header including the offset pad.
    pub fn header_len(&self) -> usize {
        self.fixed_len() + usize::from(self.offset_size().unwrap_or(0))
    }

    /// Bytes after the header, bounded by Length when present.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = self.length().map_or(data.len(), usize::from);
        &data[self.header_len()..end]
    }

    /// A control message whose payload is empty: a Zero-Length Body ack.
    pub fn is_zlb(&self) -> bool {
        self.is_control() && self.payload().is_empty()
    }
}

/// Owned form of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// T bit.
    pub control: bool,
    /// L bit: emit the Length field.
    pub with_length: bool,
    /// S bit with (Ns, Nr).
    pub sequence: Option<(u16, u16)>,
    /// O bit with the offset size; the pad is written as zeros.
    pub offset: Option<u16>,
    /// P bit.
    pub priority: bool,
    /// Receiver's tunnel ID.
    pub tunnel_id: u16,
    /// Receiver's session ID.
    pub session_id: u16,
}

impl Repr {
    /// Header of a control message (T, L and S set).
    pub const fn control(tunnel_id: u16, session_id: u16, ns: u16, nr: u16) -> Self {
        Repr {
            control: true,
            with_length: true,
            sequence: Some((ns, nr)),
            offset: None,
            priority: false,
            tunnel_id,
            session_id,
        }
    }

    /// Header of a plain data message (no optional fields).
    pub const fn data(tunnel_id: u16, session_id: u16) -> Self {
        Repr {
            control: false,
            with_length: false,
            sequence: None,
            offset: None,
            priority: false,
            tunnel_id,
            session_id,
        }
    }

    /// Read the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Self {
        Repr {
            control: packet.is_control(),
            with_length: packet.has_length(),
            sequence: packet.ns().zip(packet.nr()),
            offset: packet.offset_size(),
            priority: packet.priority(),
            tunnel_id: packet.tunnel_id(),
            session_id: packet.session_id(),
        }
    }

    /// Bytes this header takes, including any offset pad.
    pub fn header_len(&self) -> usize {
        6 + if self.with_length { 2 } else { 0 }
            + if self.sequence.is_some() { 4 } else { 0 }
            + self.offset.map_or(0, |pad| 2 + usize::from(pad))
    }

    /// Write the header into the front of `buf`; `payload_len` fills Length.
    ///
    /// Returns the header length, or an error when `buf` is too short or the
    /// total does not fit the 16-bit Length field.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Result<usize, WireError> {
        let header_len = self.header_len();
        if buf.len() < header_len {
            return Err(WireError::BufferTooSmall);
        }
        let total = header_len + payload_len;
        if self.with_length && total > usize::from(u16::MAX) {
            return Err(WireError::BadLength);
        }
        let mut word = VERSION;
        if self.control {
            word |= flags::TYPE;
        }
        if self.with_length {
            word |= flags::LENGTH;
        }
        if self.sequence.is_some() {
            word |= flags::SEQUENCE;
        }
        if self.offset.is_some() {
            word |= flags::OFFSET;
        }
        if self.priority {
            word |= flags::PRIORITY;
        }
        let mut at = 0;
        let mut put = |value: u16| {
            buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
            at += 2;
        };
        put(word);
        if self.with_length {
            put(total as u16);
        }
        put(self.tunnel_id);
        put(self.session_id);
        if let Some((ns, nr)) = self.sequence {
            put(ns);
            put(nr);
        }
        if let Some(pad) = self.offset {
            put(pad);
            buf[at..at + usize::from(pad)].fill(0);
        }
        Ok(header_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SCCRQ header from the xl2tpd capture: T L S set, Length 0x0067,
    // tunnel 0, session 0, Ns 0, Nr 0.
    const CONTROL: [u8; 12] = [
        0xc8, 0x02, // flags T L S, version 2
        0x00, 0x0c, // length (header only here)
        0x00, 0x00, // tunnel ID
        0x00, 0x00, // session ID
        0x00, 0x00, // Ns
        0x00, 0x00, // Nr
    ];

    #[test]
    fn control_header_both_ways() {
        let packet = Packet::new_checked(&CONTROL[..]).unwrap();
        assert!(packet.is_control());
        assert!(packet.is_zlb());
        let repr = Repr::parse(&packet);
        assert_eq!(repr, Repr::control(0, 0, 0, 0));
        let mut buf = [0xa5u8; 12];
        assert_eq!(repr.emit(&mut buf, 0).unwrap(), 12);
        assert_eq!(buf, CONTROL);
    }

    #[test]
    fn data_header_with_offset_and_sequence() {
        let bytes = [
            0x4a, 0x02, // L S O, version 2
            0x00, 0x13, // length 19
            0x12, 0x34, // tunnel
            0x56, 0x78, // session
            0x00, 0x05, // Ns
            0x00, 0x00, // Nr
            0x00, 0x02, // offset size 2
            0x00, 0x00, // pad
            0xff, 0x03, 0xc0, // payload
        ];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!packet.is_control());
        assert_eq!(packet.tunnel_id(), 0x1234);
        assert_eq!(packet.session_id(), 0x5678);
        assert_eq!(packet.ns(), Some(5));
        assert_eq!(packet.offset_size(), Some(2));
        assert_eq!(packet.payload(), &[0xff, 0x03, 0xc0]);
        let repr = Repr::parse(&packet);
        let mut buf = [0xa5u8; 19];
        let n = repr.emit(&mut buf, 3).unwrap();
        buf[n..].copy_from_slice(&[0xff, 0x03, 0xc0]);
        assert_eq!(buf, bytes);
    }

    #[test]
    fn minimal_data_header() {
        let bytes = [0x00, 0x02, 0x00, 0x01, 0x00, 0x02, 0xc0, 0x21];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 6);
        assert_eq!(packet.payload(), &[0xc0, 0x21]);
        assert_eq!(Repr::parse(&packet), Repr::data(1, 2));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Packet::new_checked(&[0xc8][..]), Err(WireError::Truncated));
        assert_eq!(
            Packet::new_checked(&[0xc8, 0x03, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0][..]),
            Err(WireError::BadVersion(3))
        );
        // Control message without S bit.
        assert_eq!(
            Packet::new_checked(&[0xc0, 0x02, 0, 8, 0, 0, 0, 0][..]),
            Err(WireError::BadControlFlags)
        );
        // Length beyond the buffer.
        assert_eq!(
            Packet::new_checked(&[0xc8, 0x02, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0][..]),
            Err(WireError::Truncated)
        );
        // Length shorter than the header.
        assert_eq!(
            Packet::new_checked(&[0xc8, 0x02, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0][..]),
            Err(WireError::BadLength)
        );
        // Offset pad beyond the end.
        assert_eq!(
            Packet::new_checked(&[0x02, 0x02, 0, 1, 0, 2, 0, 9][..]),
            Err(WireError::BadLength)
        );
    }

    #[test]
    fn every_prefix_is_handled() {
        let bytes = [
            0x4a, 0x02, 0x00, 0x13, 0x12, 0x34, 0x56, 0x78, 0x00, 0x05, 0x00, 0x00, 0x00, 0x02,
            0x00, 0x00, 0xff, 0x03, 0xc0,
        ];
        for len in 0..bytes.len() {
            if let Ok(packet) = Packet::new_checked(&bytes[..len]) {
                let _ = packet.payload();
            }
        }
    }
}
