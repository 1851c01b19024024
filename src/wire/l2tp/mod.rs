//! L2TPv2 wire formats (RFC 2661 §3 and §4).
//!
//! - [`header`]: the header every L2TP packet starts with.
//! - [`avp`]: the raw Attribute-Value Pair reader and writer (M/H bits,
//!   vendor ID, lengths).
//! - [`avps`]: typed values for every AVP of RFC 2661 §4.4.
//! - [`hidden`]: AVP hiding with the tunnel secret and Random Vector (§4.3).
//! - [`message`]: a whole control message, owned, parsed and emitted.

pub mod avp;
pub mod avps;
pub mod header;
pub mod hidden;
pub mod message;

pub use avp::{AvpHeader, AvpIter, AvpWriter, RawAvp};
pub use avps::{Avp, AvpType, MessageType, ResultCode};
pub use header::{Packet, Repr as HeaderRepr};
pub use message::ControlMessage;

/// Why a byte string is not a valid L2TP packet or AVP.
///
/// Flat and `Copy` so a variant can be a metric label and maps to an L2TP
/// result code (§4.4.2 error codes 2 and 3 are "length is wrong" and "a field
/// value is out of range").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Fewer bytes than a field needs.
    Truncated,
    /// A length field disagrees with the data or with its own minimum.
    BadLength,
    /// Version nibble is not 2.
    BadVersion(u8),
    /// A control message without L and S, or with O set (§3.1).
    BadControlFlags,
    /// An AVP value has the wrong size for its type.
    AvpValueLength {
        /// The attribute type (IETF vendor).
        attr: u16,
    },
    /// An AVP value is outside the range the RFC allows.
    AvpValueRange {
        /// The attribute type (IETF vendor).
        attr: u16,
    },
    /// The first AVP of a control message is not Message Type (§4.4.1).
    MissingMessageType,
    /// A hidden AVP with no Random Vector before it, or no secret to undo it.
    HiddenWithoutKey,
    /// A hidden AVP whose recovered length is larger than its data (§4.3).
    HiddenBadLength,
    /// Message Type must not be hidden (§4.4.1).
    HiddenMessageType,
    /// The caller's buffer is too small for the emitted bytes.
    BufferTooSmall,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated"),
            WireError::BadLength => f.write_str("length field disagrees with data"),
            WireError::BadVersion(v) => write!(f, "unsupported version {v}"),
            WireError::BadControlFlags => f.write_str("control message without L/S or with O"),
            WireError::AvpValueLength { attr } => write!(f, "AVP {attr}: wrong value length"),
            WireError::AvpValueRange { attr } => write!(f, "AVP {attr}: value out of range"),
            WireError::MissingMessageType => f.write_str("first AVP is not Message Type"),
            WireError::HiddenWithoutKey => {
                f.write_str("hidden AVP without Random Vector or secret")
            }
            WireError::HiddenBadLength => f.write_str("hidden AVP original length too large"),
            WireError::HiddenMessageType => f.write_str("Message Type AVP is hidden"),
            WireError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for WireError {}
