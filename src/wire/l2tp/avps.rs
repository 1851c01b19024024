//! Typed values for every AVP of RFC 2661 §4.4.
//!
//! `Avp::parse` turns one raw (already unhidden) AVP into a typed value and
//! `Avp::emit` writes it back with the M bit RFC 2661 prescribes for its type.
//! Vendor AVPs, unknown IETF AVPs and AVPs with reserved bits set survive as
//! [`Avp::Unknown`] so the control plane can apply the M-bit rule of §4.1.

use super::avp::{AvpHeader, AvpWriter, RawAvp, VENDOR_IETF};
use super::WireError;

macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this codec does not know, kept verbatim.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// Control message types (RFC 2661 §3.2).
    pub enum MessageType(u16) {
        /// Start-Control-Connection-Request.
        Sccrq = 1,
        /// Start-Control-Connection-Reply.
        Sccrp = 2,
        /// Start-Control-Connection-Connected.
        Scccn = 3,
        /// Stop-Control-Connection-Notification.
        StopCcn = 4,
        /// Hello (keepalive).
        Hello = 6,
        /// Outgoing-Call-Request.
        Ocrq = 7,
        /// Outgoing-Call-Reply.
        Ocrp = 8,
        /// Outgoing-Call-Connected.
        Occn = 9,
        /// Incoming-Call-Request.
        Icrq = 10,
        /// Incoming-Call-Reply.
        Icrp = 11,
        /// Incoming-Call-Connected.
        Iccn = 12,
        /// Call-Disconnect-Notify.
        Cdn = 14,
        /// WAN-Error-Notify.
        Wen = 15,
        /// Set-Link-Info.
        Sli = 16,
    }
}

impl MessageType {
    /// Whether the message belongs to a session (header Session ID non-zero
    /// for the receiver) rather than to the control connection itself.
    pub fn is_session_message(self) -> bool {
        matches!(
            self,
            MessageType::Ocrq
                | MessageType::Ocrp
                | MessageType::Occn
                | MessageType::Icrq
                | MessageType::Icrp
                | MessageType::Iccn
                | MessageType::Cdn
                | MessageType::Wen
                | MessageType::Sli
        )
    }

    /// Short upper-case name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Sccrq => "SCCRQ",
            MessageType::Sccrp => "SCCRP",
            MessageType::Scccn => "SCCCN",
            MessageType::StopCcn => "StopCCN",
            MessageType::Hello => "HELLO",
            MessageType::Ocrq => "OCRQ",
            MessageType::Ocrp => "OCRP",
            MessageType::Occn => "OCCN",
            MessageType::Icrq => "ICRQ",
            MessageType::Icrp => "ICRP",
            MessageType::Iccn => "ICCN",
            MessageType::Cdn => "CDN",
            MessageType::Wen => "WEN",
            MessageType::Sli => "SLI",
            MessageType::Unknown(_) => "unknown",
        }
    }
}

enum_with_unknown! {
    /// IETF attribute types (RFC 2661 §4.4).
    pub enum AvpType(u16) {
        /// §4.4.1
        MessageType = 0,
        /// §4.4.2
        ResultCode = 1,
        /// §4.4.3
        ProtocolVersion = 2,
        /// §4.4.3
        FramingCapabilities = 3,
        /// §4.4.3
        BearerCapabilities = 4,
        /// §4.4.3
        TieBreaker = 5,
        /// §4.4.3
        FirmwareRevision = 6,
        /// §4.4.3
        HostName = 7,
        /// §4.4.3
        VendorName = 8,
        /// §4.4.3
        AssignedTunnelId = 9,
        /// §4.4.3
        ReceiveWindowSize = 10,
        /// §4.4.3
        Challenge = 11,
        /// §4.4.4
        Q931Cause = 12,
        /// §4.4.3
        ChallengeResponse = 13,
        /// §4.4.4
        AssignedSessionId = 14,
        /// §4.4.4
        CallSerialNumber = 15,
        /// §4.4.4
        MinimumBps = 16,
        /// §4.4.4
        MaximumBps = 17,
        /// §4.4.4
        BearerType = 18,
        /// §4.4.4
        FramingType = 19,
        /// §4.4.4
        CalledNumber = 21,
        /// §4.4.4
        CallingNumber = 22,
        /// §4.4.4
        SubAddress = 23,
        /// §4.4.4 ("(Tx) Connect Speed")
        TxConnectSpeed = 24,
        /// §4.4.4
        PhysicalChannelId = 25,
        /// §4.4.5
        InitialReceivedLcpConfreq = 26,
        /// §4.4.5
        LastSentLcpConfreq = 27,
        /// §4.4.5
        LastReceivedLcpConfreq = 28,
        /// §4.4.5
        ProxyAuthenType = 29,
        /// §4.4.5
        ProxyAuthenName = 30,
        /// §4.4.5
        ProxyAuthenChallenge = 31,
        /// §4.4.5
        ProxyAuthenId = 32,
        /// §4.4.5
        ProxyAuthenResponse = 33,
        /// §4.4.6
        CallErrors = 34,
        /// §4.4.6
        Accm = 35,
        /// §4.4.3
        RandomVector = 36,
        /// §4.4.4
        PrivateGroupId = 37,
        /// §4.4.4
        RxConnectSpeed = 38,
        /// §4.4.4
        SequencingRequired = 39,
    }
}

/// Result Code AVP value (§4.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultCode {
    /// Result code; its meaning depends on StopCCN vs CDN.
    pub result: u16,
    /// General error code, present when the AVP is at least 4 bytes long.
    pub error: Option<u16>,
    /// Optional human-readable message; only present with `error`.
    pub message: Option<Vec<u8>>,
}

/// StopCCN result codes (§4.4.2).
pub mod stopccn_result {
    /// General request to clear control connection.
    pub const CLEAR: u16 = 1;
    /// General error, Error Code indicates the problem.
    pub const GENERAL_ERROR: u16 = 2;
    /// Control channel already exists.
    pub const ALREADY_EXISTS: u16 = 3;
    /// Requester is not authorized to establish a control channel.
    pub const NOT_AUTHORIZED: u16 = 4;
    /// The protocol version of the requester is not supported.
    pub const BAD_PROTOCOL_VERSION: u16 = 5;
    /// Requester is being shut down.
    pub const SHUTTING_DOWN: u16 = 6;
    /// Finite State Machine error.
    pub const FSM_ERROR: u16 = 7;
}

/// CDN result codes (§4.4.2).
pub mod cdn_result {
    /// Call disconnected due to loss of carrier.
    pub const LOST_CARRIER: u16 = 1;
    /// Call disconnected for the reason indicated in error code.
    pub const GENERAL_ERROR: u16 = 2;
    /// Call disconnected for administrative reasons.
    pub const ADMIN: u16 = 3;
    /// Call failed due to lack of appropriate facilities being available
    /// (temporary condition).
    pub const TEMPORARY_NO_FACILITIES: u16 = 4;
    /// Call failed due to lack of appropriate facilities being available
    /// (permanent condition).
    pub const PERMANENT_NO_FACILITIES: u16 = 5;
    /// Invalid destination.
    pub const INVALID_DESTINATION: u16 = 6;
    /// Call failed due to no carrier detected.
    pub const NO_CARRIER: u16 = 7;
    /// Call failed due to detection of a busy signal.
    pub const BUSY: u16 = 8;
    /// Call failed due to lack of a dial tone.
    pub const NO_DIAL_TONE: u16 = 9;
    /// Call was not established within time allotted by LAC.
    pub const TIMEOUT: u16 = 10;
    /// Call was connected but no appropriate framing was detected.
    pub const NO_FRAMING: u16 = 11;
}

/// General error codes (§4.4.2).
pub mod error_code {
    /// No general error.
    pub const NONE: u16 = 0;
    /// No control connection exists yet for this LAC-LNS pair.
    pub const NO_CONTROL_CONNECTION: u16 = 1;
    /// Length is wrong.
    pub const BAD_LENGTH: u16 = 2;
    /// One of the field values was out of range or reserved field was non-zero.
    pub const BAD_VALUE: u16 = 3;
    /// Insufficient resources to handle this operation now.
    pub const NO_RESOURCES: u16 = 4;
    /// The Session ID is invalid in this context.
    pub const BAD_SESSION_ID: u16 = 5;
    /// A generic vendor-specific error occurred in the LAC.
    pub const VENDOR: u16 = 6;
    /// Try another LNS (the message field may name it).
    pub const TRY_ANOTHER: u16 = 7;
    /// Session or tunnel was shutdown due to receipt of an unknown AVP with
    /// the M-bit set.
    pub const UNKNOWN_MANDATORY_AVP: u16 = 8;
}

/// Call Errors AVP value (§4.4.6): counters the LAC reports in WEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CallErrors {
    /// CRC errors.
    pub crc: u32,
    /// Framing errors.
    pub framing: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeouts: u32,
    /// Alignment errors.
    pub alignment: u32,
}

/// Framing and bearer bits (§4.4.3, §4.4.4).
pub mod caps {
    /// Synchronous framing.
    pub const FRAMING_SYNC: u32 = 0x1;
    /// Asynchronous framing.
    pub const FRAMING_ASYNC: u32 = 0x2;
    /// Digital bearer.
    pub const BEARER_DIGITAL: u32 = 0x1;
    /// Analog bearer.
    pub const BEARER_ANALOG: u32 = 0x2;
}

/// Proxy Authen Type values (§4.4.5).
pub mod proxy_authen_type {
    /// Reserved.
    pub const RESERVED: u16 = 0;
    /// Textual username/password exchange.
    pub const TEXTUAL: u16 = 1;
    /// PPP CHAP.
    pub const CHAP: u16 = 2;
    /// PPP PAP.
    pub const PAP: u16 = 3;
    /// No authentication.
    pub const NONE: u16 = 4;
    /// Microsoft CHAP Version 1 (MSCHAPv1).
    pub const MSCHAP_V1: u16 = 5;
}

/// A typed AVP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Avp {
    /// §4.4.1 Message Type.
    MessageType(MessageType),
    /// §4.4.2 Result Code (StopCCN, CDN).
    ResultCode(ResultCode),
    /// §4.4.3 Protocol Version: version 1, revision 0 for RFC 2661.
    ProtocolVersion {
        /// Version (1).
        version: u8,
        /// Revision (0).
        revision: u8,
    },
    /// §4.4.3 Framing Capabilities bit mask.
    FramingCapabilities(u32),
    /// §4.4.3 Bearer Capabilities bit mask.
    BearerCapabilities(u32),
    /// §4.4.3 Tie Breaker.
    TieBreaker([u8; 8]),
    /// §4.4.3 Firmware Revision.
    FirmwareRevision(u16),
    /// §4.4.3 Host Name (at least one byte).
    HostName(Vec<u8>),
    /// §4.4.3 Vendor Name.
    VendorName(Vec<u8>),
    /// §4.4.3 Assigned Tunnel ID (non-zero in SCCRQ/SCCRP).
    AssignedTunnelId(u16),
    /// §4.4.3 Receive Window Size (non-zero).
    ReceiveWindowSize(u16),
    /// §4.4.3 Challenge (at least one byte).
    Challenge(Vec<u8>),
    /// §4.4.4 Q.931 Cause Code.
    Q931Cause {
        /// Cause code.
        cause: u16,
        /// Cause message type.
        message: u8,
        /// Advisory text.
        advisory: Vec<u8>,
    },
    /// §4.4.3 Challenge Response (16-byte MD5 digest).
    ChallengeResponse([u8; 16]),
    /// §4.4.4 Assigned Session ID.
    AssignedSessionId(u16),
    /// §4.4.4 Call Serial Number.
    CallSerialNumber(u32),
    /// §4.4.4 Minimum BPS.
    MinimumBps(u32),
    /// §4.4.4 Maximum BPS.
    MaximumBps(u32),
    /// §4.4.4 Bearer Type bit mask.
    BearerType(u32),
    /// §4.4.4 Framing Type bit mask.
    FramingType(u32),
    /// §4.4.4 Called Number.
    CalledNumber(Vec<u8>),
    /// §4.4.4 Calling Number.
    CallingNumber(Vec<u8>),
    /// §4.4.4 Sub-Address.
    SubAddress(Vec<u8>),
    /// §4.4.4 (Tx) Connect Speed in bits per second.
    TxConnectSpeed(u32),
    /// §4.4.4 Physical Channel ID.
    PhysicalChannelId(u32),
    /// §4.4.5 Initial Received LCP CONFREQ (LCP options, no header).
    InitialReceivedLcpConfreq(Vec<u8>),
    /// §4.4.5 Last Sent LCP CONFREQ.
    LastSentLcpConfreq(Vec<u8>),
    /// §4.4.5 Last Received LCP CONFREQ.
    LastReceivedLcpConfreq(Vec<u8>),
    /// §4.4.5 Proxy Authen Type (see [`proxy_authen_type`]).
    ProxyAuthenType(u16),
    /// §4.4.5 Proxy Authen Name.
    ProxyAuthenName(Vec<u8>),
    /// §4.4.5 Proxy Authen Challenge.
    ProxyAuthenChallenge(Vec<u8>),
    /// §4.4.5 Proxy Authen ID (the PPP identifier; first octet reserved).
    ProxyAuthenId(u8),
    /// §4.4.5 Proxy Authen Response.
    ProxyAuthenResponse(Vec<u8>),
    /// §4.4.6 Call Errors.
    CallErrors(CallErrors),
    /// §4.4.6 ACCM.
    Accm {
        /// Send ACCM.
        send: u32,
        /// Receive ACCM.
        receive: u32,
    },
    /// §4.4.3 Random Vector.
    RandomVector(Vec<u8>),
    /// §4.4.4 Private Group ID.
    PrivateGroupId(Vec<u8>),
    /// §4.4.4 Rx Connect Speed.
    RxConnectSpeed(u32),
    /// §4.4.4 Sequencing Required (no value).
    SequencingRequired,
    /// Vendor, unknown or reserved-bit AVP, kept verbatim (value unhidden).
    Unknown {
        /// Header as received (`hidden` cleared once the value is unhidden).
        header: AvpHeader,
        /// Value bytes.
        value: Vec<u8>,
    },
}

/// Fixed-size big-endian reads from an AVP value whose length was checked.
///
/// Each helper returns `None` rather than panicking, so a length check that
/// is ever wrong turns into an error instead of a crash.
fn be_u16(value: &[u8], at: usize) -> Option<u16> {
    let bytes = value.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn be_u32(value: &[u8], at: usize) -> Option<u32> {
    let bytes = value.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A value of exactly `N` bytes, or the length error for `attr`.
fn exact<const N: usize>(value: &[u8], attr: u16) -> Result<[u8; N], WireError> {
    value
        .try_into()
        .map_err(|_| WireError::AvpValueLength { attr })
}

fn exact_u16(value: &[u8], attr: u16) -> Result<u16, WireError> {
    exact::<2>(value, attr).map(u16::from_be_bytes)
}

fn exact_u32(value: &[u8], attr: u16) -> Result<u32, WireError> {
    exact::<4>(value, attr).map(u32::from_be_bytes)
}

/// A string-like value that the RFC requires to be at least one octet long.
fn non_empty(value: &[u8], attr: u16) -> Result<Vec<u8>, WireError> {
    if value.is_empty() {
        Err(WireError::AvpValueLength { attr })
    } else {
        Ok(value.to_vec())
    }
}

impl Avp {
    /// The attribute type of this AVP (`Unknown` for vendor AVPs).
    ///
    /// An [`Avp::Unknown`] always reports `AvpType::Unknown(attr)`, even when
    /// its number collides with an IETF type (a vendor AVP, or an IETF AVP
    /// with reserved bits set), so `find(AvpType::HostName)` never returns it.
    pub fn attr_type(&self) -> AvpType {
        match self {
            Avp::MessageType(_) => AvpType::MessageType,
            Avp::ResultCode(_) => AvpType::ResultCode,
            Avp::ProtocolVersion { .. } => AvpType::ProtocolVersion,
            Avp::FramingCapabilities(_) => AvpType::FramingCapabilities,
            Avp::BearerCapabilities(_) => AvpType::BearerCapabilities,
            Avp::TieBreaker(_) => AvpType::TieBreaker,
            Avp::FirmwareRevision(_) => AvpType::FirmwareRevision,
            Avp::HostName(_) => AvpType::HostName,
            Avp::VendorName(_) => AvpType::VendorName,
            Avp::AssignedTunnelId(_) => AvpType::AssignedTunnelId,
            Avp::ReceiveWindowSize(_) => AvpType::ReceiveWindowSize,
            Avp::Challenge(_) => AvpType::Challenge,
            Avp::Q931Cause { .. } => AvpType::Q931Cause,
            Avp::ChallengeResponse(_) => AvpType::ChallengeResponse,
            Avp::AssignedSessionId(_) => AvpType::AssignedSessionId,
            Avp::CallSerialNumber(_) => AvpType::CallSerialNumber,
            Avp::MinimumBps(_) => AvpType::MinimumBps,
            Avp::MaximumBps(_) => AvpType::MaximumBps,
            Avp::BearerType(_) => AvpType::BearerType,
            Avp::FramingType(_) => AvpType::FramingType,
            Avp::CalledNumber(_) => AvpType::CalledNumber,
            Avp::CallingNumber(_) => AvpType::CallingNumber,
            Avp::SubAddress(_) => AvpType::SubAddress,
            Avp::TxConnectSpeed(_) => AvpType::TxConnectSpeed,
            Avp::PhysicalChannelId(_) => AvpType::PhysicalChannelId,
            Avp::InitialReceivedLcpConfreq(_) => AvpType::InitialReceivedLcpConfreq,
            Avp::LastSentLcpConfreq(_) => AvpType::LastSentLcpConfreq,
            Avp::LastReceivedLcpConfreq(_) => AvpType::LastReceivedLcpConfreq,
            Avp::ProxyAuthenType(_) => AvpType::ProxyAuthenType,
            Avp::ProxyAuthenName(_) => AvpType::ProxyAuthenName,
            Avp::ProxyAuthenChallenge(_) => AvpType::ProxyAuthenChallenge,
            Avp::ProxyAuthenId(_) => AvpType::ProxyAuthenId,
            Avp::ProxyAuthenResponse(_) => AvpType::ProxyAuthenResponse,
            Avp::CallErrors(_) => AvpType::CallErrors,
            Avp::Accm { .. } => AvpType::Accm,
            Avp::RandomVector(_) => AvpType::RandomVector,
            Avp::PrivateGroupId(_) => AvpType::PrivateGroupId,
            Avp::RxConnectSpeed(_) => AvpType::RxConnectSpeed,
            Avp::SequencingRequired => AvpType::SequencingRequired,
            Avp::Unknown { header, .. } => AvpType::Unknown(header.attr_type),
        }
    }

    /// Parse one AVP whose value is already unhidden (`value` replaces
    /// `raw.value` when it was hidden).
    ///
    /// Lengths are checked exactly against §4.4; a wrong one gives
    /// [`WireError::AvpValueLength`]. Values are only range-checked where the
    /// RFC makes a value invalid in every message (a zero Receive Window
    /// Size); rules that depend on the message (a zero Assigned Tunnel ID is
    /// fine in a StopCCN) are left to the state machines.
    pub fn parse(raw: &RawAvp<'_>, value: &[u8]) -> Result<Avp, WireError> {
        let header = raw.header;
        // §4.1: reserved bits set means "unrecognized"; vendor AVPs are
        // outside the IETF space this codec types.
        if header.reserved_bits || header.vendor_id != VENDOR_IETF {
            return Ok(Avp::unknown(header, value));
        }
        let attr = header.attr_type;
        let length = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(WireError::AvpValueLength { attr })
            }
        };
        let avp = match AvpType::from(attr) {
            // §4.4.1: a 2-octet Message Type.
            AvpType::MessageType => Avp::MessageType(MessageType::from(exact_u16(value, attr)?)),
            // §4.4.2: "Length is 8 if there is no Error Code or Message, 10
            // if there is an Error Code and no Error Message or > 10 if there
            // is an Error Code and an Error message" (value: 2, 4 or > 4).
            AvpType::ResultCode => {
                length(value.len() == 2 || value.len() >= 4)?;
                let result = be_u16(value, 0).ok_or(WireError::AvpValueLength { attr })?;
                let error = be_u16(value, 2);
                let message = value.get(4..).filter(|m| !m.is_empty()).map(<[u8]>::to_vec);
                Avp::ResultCode(ResultCode {
                    result,
                    error,
                    message,
                })
            }
            // §4.4.3: Ver and Rev, one octet each.
            AvpType::ProtocolVersion => {
                let [version, revision] = exact::<2>(value, attr)?;
                Avp::ProtocolVersion { version, revision }
            }
            AvpType::FramingCapabilities => Avp::FramingCapabilities(exact_u32(value, attr)?),
            AvpType::BearerCapabilities => Avp::BearerCapabilities(exact_u32(value, attr)?),
            // §4.4.3: "The Tie Breaker Value is an 8 octet value".
            AvpType::TieBreaker => Avp::TieBreaker(exact::<8>(value, attr)?),
            AvpType::FirmwareRevision => Avp::FirmwareRevision(exact_u16(value, attr)?),
            // §4.4.3: the Host Name "MUST be at least 1 octet".
            AvpType::HostName => Avp::HostName(non_empty(value, attr)?),
            AvpType::VendorName => Avp::VendorName(value.to_vec()),
            AvpType::AssignedTunnelId => Avp::AssignedTunnelId(exact_u16(value, attr)?),
            // §4.4.3 / §5.8: the window is how many control messages the
            // peer may have outstanding; zero would allow none at all.
            AvpType::ReceiveWindowSize => match exact_u16(value, attr)? {
                0 => return Err(WireError::AvpValueRange { attr }),
                size => Avp::ReceiveWindowSize(size),
            },
            // §4.4.3: the challenge is "one or more octets of random data".
            AvpType::Challenge => Avp::Challenge(non_empty(value, attr)?),
            // §4.4.4: Cause Code (2 octets), Cause Msg (1 octet), then an
            // optional advisory message.
            AvpType::Q931Cause => {
                let (fixed, advisory) = value
                    .split_first_chunk::<3>()
                    .ok_or(WireError::AvpValueLength { attr })?;
                Avp::Q931Cause {
                    cause: u16::from_be_bytes([fixed[0], fixed[1]]),
                    message: fixed[2],
                    advisory: advisory.to_vec(),
                }
            }
            // §4.4.3: "a 16 octet value" (an MD5 digest).
            AvpType::ChallengeResponse => Avp::ChallengeResponse(exact::<16>(value, attr)?),
            AvpType::AssignedSessionId => Avp::AssignedSessionId(exact_u16(value, attr)?),
            AvpType::CallSerialNumber => Avp::CallSerialNumber(exact_u32(value, attr)?),
            AvpType::MinimumBps => Avp::MinimumBps(exact_u32(value, attr)?),
            AvpType::MaximumBps => Avp::MaximumBps(exact_u32(value, attr)?),
            AvpType::BearerType => Avp::BearerType(exact_u32(value, attr)?),
            AvpType::FramingType => Avp::FramingType(exact_u32(value, attr)?),
            AvpType::CalledNumber => Avp::CalledNumber(value.to_vec()),
            AvpType::CallingNumber => Avp::CallingNumber(value.to_vec()),
            AvpType::SubAddress => Avp::SubAddress(value.to_vec()),
            AvpType::TxConnectSpeed => Avp::TxConnectSpeed(exact_u32(value, attr)?),
            AvpType::PhysicalChannelId => Avp::PhysicalChannelId(exact_u32(value, attr)?),
            AvpType::InitialReceivedLcpConfreq => Avp::InitialReceivedLcpConfreq(value.to_vec()),
            AvpType::LastSentLcpConfreq => Avp::LastSentLcpConfreq(value.to_vec()),
            AvpType::LastReceivedLcpConfreq => Avp::LastReceivedLcpConfreq(value.to_vec()),
            AvpType::ProxyAuthenType => Avp::ProxyAuthenType(exact_u16(value, attr)?),
            AvpType::ProxyAuthenName => Avp::ProxyAuthenName(value.to_vec()),
            AvpType::ProxyAuthenChallenge => Avp::ProxyAuthenChallenge(value.to_vec()),
            // §4.4.5: a 2-octet ID whose first octet "MUST be 0"; the PPP
            // identifier is the second. A non-zero first octet is the
            // sender's bug, not a reason to drop the session: ignored.
            AvpType::ProxyAuthenId => Avp::ProxyAuthenId(exact::<2>(value, attr)?[1]),
            AvpType::ProxyAuthenResponse => Avp::ProxyAuthenResponse(value.to_vec()),
            // §4.4.6: 2 reserved octets, then six 32-bit counters.
            AvpType::CallErrors => {
                let v = exact::<26>(value, attr)?;
                let counter = |at| be_u32(&v, at).unwrap_or(0);
                Avp::CallErrors(CallErrors {
                    crc: counter(2),
                    framing: counter(6),
                    hardware_overruns: counter(10),
                    buffer_overruns: counter(14),
                    timeouts: counter(18),
                    alignment: counter(22),
                })
            }
            // §4.4.6: 2 reserved octets, Send ACCM, Receive ACCM.
            AvpType::Accm => {
                let v = exact::<10>(value, attr)?;
                Avp::Accm {
                    send: be_u32(&v, 2).unwrap_or(0),
                    receive: be_u32(&v, 6).unwrap_or(0),
                }
            }
            AvpType::RandomVector => Avp::RandomVector(value.to_vec()),
            AvpType::PrivateGroupId => Avp::PrivateGroupId(value.to_vec()),
            AvpType::RxConnectSpeed => Avp::RxConnectSpeed(exact_u32(value, attr)?),
            // §4.4.4: "This AVP has no Attribute Value field".
            AvpType::SequencingRequired => {
                length(value.is_empty())?;
                Avp::SequencingRequired
            }
            AvpType::Unknown(_) => Avp::unknown(header, value),
        };
        Ok(avp)
    }

    /// An unrecognized AVP; its value is already unhidden, so H is cleared.
    fn unknown(header: AvpHeader, value: &[u8]) -> Avp {
        Avp::Unknown {
            header: AvpHeader {
                hidden: false,
                ..header
            },
            value: value.to_vec(),
        }
    }

    /// Append the AVP's value bytes (no AVP header) to `out`.
    pub fn emit_value(&self, out: &mut Vec<u8>) {
        match self {
            Avp::MessageType(kind) => out.extend_from_slice(&u16::from(*kind).to_be_bytes()),
            Avp::ResultCode(code) => {
                out.extend_from_slice(&code.result.to_be_bytes());
                // The message can only follow an error code (§4.4.2), so a
                // message without one is sent with error code 0 ("no
                // general error").
                if code.error.is_some() || code.message.is_some() {
                    out.extend_from_slice(&code.error.unwrap_or(0).to_be_bytes());
                }
                if let Some(message) = &code.message {
                    out.extend_from_slice(message);
                }
            }
            Avp::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision]);
            }
            Avp::TieBreaker(value) => out.extend_from_slice(value),
            Avp::ChallengeResponse(value) => out.extend_from_slice(value),
            Avp::FirmwareRevision(v)
            | Avp::AssignedTunnelId(v)
            | Avp::ReceiveWindowSize(v)
            | Avp::AssignedSessionId(v)
            | Avp::ProxyAuthenType(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::FramingCapabilities(v)
            | Avp::BearerCapabilities(v)
            | Avp::CallSerialNumber(v)
            | Avp::MinimumBps(v)
            | Avp::MaximumBps(v)
            | Avp::BearerType(v)
            | Avp::FramingType(v)
            | Avp::TxConnectSpeed(v)
            | Avp::PhysicalChannelId(v)
            | Avp::RxConnectSpeed(v) => out.extend_from_slice(&v.to_be_bytes()),
            Avp::HostName(bytes)
            | Avp::VendorName(bytes)
            | Avp::Challenge(bytes)
            | Avp::CalledNumber(bytes)
            | Avp::CallingNumber(bytes)
            | Avp::SubAddress(bytes)
            | Avp::InitialReceivedLcpConfreq(bytes)
            | Avp::LastSentLcpConfreq(bytes)
            | Avp::LastReceivedLcpConfreq(bytes)
            | Avp::ProxyAuthenName(bytes)
            | Avp::ProxyAuthenChallenge(bytes)
            | Avp::ProxyAuthenResponse(bytes)
            | Avp::RandomVector(bytes)
            | Avp::PrivateGroupId(bytes)
            | Avp::Unknown { value: bytes, .. } => out.extend_from_slice(bytes),
            Avp::Q931Cause {
                cause,
                message,
                advisory,
            } => {
                out.extend_from_slice(&cause.to_be_bytes());
                out.push(*message);
                out.extend_from_slice(advisory);
            }
            Avp::ProxyAuthenId(id) => out.extend_from_slice(&[0, *id]),
            Avp::CallErrors(errors) => {
                out.extend_from_slice(&[0, 0]);
                for counter in [
                    errors.crc,
                    errors.framing,
                    errors.hardware_overruns,
                    errors.buffer_overruns,
                    errors.timeouts,
                    errors.alignment,
                ] {
                    out.extend_from_slice(&counter.to_be_bytes());
                }
            }
            Avp::Accm { send, receive } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send.to_be_bytes());
                out.extend_from_slice(&receive.to_be_bytes());
            }
            Avp::SequencingRequired => {}
        }
    }

    /// The M bit RFC 2661 gives this AVP type when we send it.
    ///
    /// Each §4.4 definition says "The M-bit for this AVP MUST be set to 1"
    /// or "... to 0"; the optional ones are the informational AVPs (Tie
    /// Breaker, Firmware Revision, Vendor Name, Rx Connect Speed, Physical
    /// Channel ID, Private Group ID) and every proxy LCP / proxy
    /// authentication AVP of §4.4.5. An unknown AVP keeps its own bit.
    pub fn mandatory(&self) -> bool {
        match self {
            Avp::TieBreaker(_)
            | Avp::FirmwareRevision(_)
            | Avp::VendorName(_)
            | Avp::PhysicalChannelId(_)
            | Avp::PrivateGroupId(_)
            | Avp::RxConnectSpeed(_)
            | Avp::InitialReceivedLcpConfreq(_)
            | Avp::LastSentLcpConfreq(_)
            | Avp::LastReceivedLcpConfreq(_)
            | Avp::ProxyAuthenType(_)
            | Avp::ProxyAuthenName(_)
            | Avp::ProxyAuthenChallenge(_)
            | Avp::ProxyAuthenId(_)
            | Avp::ProxyAuthenResponse(_) => false,
            Avp::Unknown { header, .. } => header.mandatory,
            Avp::MessageType(_)
            | Avp::ResultCode(_)
            | Avp::ProtocolVersion { .. }
            | Avp::FramingCapabilities(_)
            | Avp::BearerCapabilities(_)
            | Avp::HostName(_)
            | Avp::AssignedTunnelId(_)
            | Avp::ReceiveWindowSize(_)
            | Avp::Challenge(_)
            | Avp::Q931Cause { .. }
            | Avp::ChallengeResponse(_)
            | Avp::AssignedSessionId(_)
            | Avp::CallSerialNumber(_)
            | Avp::MinimumBps(_)
            | Avp::MaximumBps(_)
            | Avp::BearerType(_)
            | Avp::FramingType(_)
            | Avp::CalledNumber(_)
            | Avp::CallingNumber(_)
            | Avp::SubAddress(_)
            | Avp::TxConnectSpeed(_)
            | Avp::CallErrors(_)
            | Avp::Accm { .. }
            | Avp::RandomVector(_)
            | Avp::SequencingRequired => true,
        }
    }

    /// The header this AVP is sent with, unhidden: the RFC's M bit and the
    /// IETF vendor, or an unknown AVP's own header.
    pub fn header(&self) -> AvpHeader {
        match self {
            Avp::Unknown { header, .. } => *header,
            _ => AvpHeader {
                mandatory: self.mandatory(),
                hidden: false,
                reserved_bits: false,
                vendor_id: VENDOR_IETF,
                attr_type: u16::from(self.attr_type()),
            },
        }
    }

    /// Append the whole AVP, unhidden, through `writer`.
    ///
    /// An [`Avp::Unknown`] is written back with its own header, so an AVP we
    /// did not understand can be relayed or reported verbatim.
    pub fn emit(&self, writer: &mut AvpWriter<'_>) -> Result<(), WireError> {
        writer.push_with(self.header(), |out| self.emit_value(out))
    }
}
