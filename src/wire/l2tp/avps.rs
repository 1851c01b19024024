//! Typed values for every AVP of RFC 2661 §4.4.
//!
//! `Avp::parse` turns one raw (already unhidden) AVP into a typed value and
//! `Avp::emit` writes it back with the M bit RFC 2661 prescribes for its type.
//! Vendor AVPs, unknown IETF AVPs and AVPs with reserved bits set survive as
//! [`Avp::Unknown`] so the control plane can apply the M-bit rule of §4.1.

use super::avp::{AvpHeader, AvpWriter, RawAvp, VENDOR_IETF};
use super::WireError;

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
            // §4.4.2: the AVP is 8 octets long with only a result code, 10
            // with an error code too, and longer when an error message
            // follows the error code (so the value is 2, 4 or more than 4).
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
            // §4.4.3: the challenge is random data of at least one octet.
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
            // §4.4.3: exactly one 16-octet MD5 digest.
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
            // §4.4.4: the AVP is a bare header; it carries no value.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::l2tp::avp::AvpIter;

    /// The single AVP in `bytes`.
    fn raw(bytes: &[u8]) -> RawAvp<'_> {
        let mut iter = AvpIter::new(bytes);
        let avp = iter.next().unwrap().unwrap();
        assert!(iter.next().is_none(), "trailing bytes in test vector");
        avp
    }

    fn parse(bytes: &[u8]) -> Result<Avp, WireError> {
        let avp = raw(bytes);
        Avp::parse(&avp, avp.value)
    }

    /// Emit after a junk prefix, so a writer that touches bytes before its
    /// own start or leaves a field unwritten shows up.
    fn emit(avp: &Avp) -> Vec<u8> {
        let mut out = vec![0xa5; 3];
        avp.emit(&mut AvpWriter::new(&mut out)).unwrap();
        assert_eq!(out[..3], [0xa5; 3]);
        out.split_off(3)
    }

    /// One vector per variant, M bits as each §4.4 definition prescribes.
    /// Layout of each: flags+length (2), vendor (2), type (2), value.
    fn vectors() -> Vec<(Vec<u8>, Avp)> {
        fn v(parts: &[&[u8]]) -> Vec<u8> {
            parts.concat()
        }
        vec![
            // Message Type (M=1): HELLO.
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 0], &[0x00, 0x06]]),
                Avp::MessageType(MessageType::Hello),
            ),
            // Result Code (M=1): result only.
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 1], &[0x00, 0x01]]),
                Avp::ResultCode(ResultCode {
                    result: 1,
                    error: None,
                    message: None,
                }),
            ),
            // Result Code: result + error code.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 1], &[0x00, 0x01], &[0x00, 0x00]]),
                Avp::ResultCode(ResultCode {
                    result: 1,
                    error: Some(0),
                    message: None,
                }),
            ),
            // Result Code: result + error code + message "oops".
            (
                v(&[
                    &[0x80, 0x0e, 0, 0, 0, 1],
                    &[0x00, 0x02],
                    &[0x00, 0x06],
                    b"oops",
                ]),
                Avp::ResultCode(ResultCode {
                    result: 2,
                    error: Some(6),
                    message: Some(b"oops".to_vec()),
                }),
            ),
            // Protocol Version (M=1): 1.0.
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 2], &[0x01, 0x00]]),
                Avp::ProtocolVersion {
                    version: 1,
                    revision: 0,
                },
            ),
            // Framing Capabilities (M=1): sync | async.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 3], &[0, 0, 0, 3]]),
                Avp::FramingCapabilities(3),
            ),
            // Bearer Capabilities (M=1): analog.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 4], &[0, 0, 0, 2]]),
                Avp::BearerCapabilities(2),
            ),
            // Tie Breaker (M=0): 8 octets.
            (
                v(&[&[0x00, 0x0e, 0, 0, 0, 5], &[1, 2, 3, 4, 5, 6, 7, 8]]),
                Avp::TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]),
            ),
            // Firmware Revision (M=0).
            (
                v(&[&[0x00, 0x08, 0, 0, 0, 6], &[0x06, 0x90]]),
                Avp::FirmwareRevision(0x0690),
            ),
            // Host Name (M=1): "lns".
            (
                v(&[&[0x80, 0x09, 0, 0, 0, 7], b"lns"]),
                Avp::HostName(b"lns".to_vec()),
            ),
            // Vendor Name (M=0): "x".
            (
                v(&[&[0x00, 0x07, 0, 0, 0, 8], b"x"]),
                Avp::VendorName(b"x".to_vec()),
            ),
            // Vendor Name may be empty (any number of octets).
            (v(&[&[0x00, 0x06, 0, 0, 0, 8]]), Avp::VendorName(Vec::new())),
            // Assigned Tunnel ID (M=1): 0 parses (a StopCCN may carry it).
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 9], &[0, 0]]),
                Avp::AssignedTunnelId(0),
            ),
            // Receive Window Size (M=1): 4.
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 10], &[0, 4]]),
                Avp::ReceiveWindowSize(4),
            ),
            // Challenge (M=1): one octet.
            (
                v(&[&[0x80, 0x07, 0, 0, 0, 11], &[0xaa]]),
                Avp::Challenge(vec![0xaa]),
            ),
            // Q.931 Cause Code (M=1): cause 16, Disconnect (0x45), "ok".
            (
                v(&[&[0x80, 0x0b, 0, 0, 0, 12], &[0x00, 0x10], &[0x45], b"ok"]),
                Avp::Q931Cause {
                    cause: 16,
                    message: 0x45,
                    advisory: b"ok".to_vec(),
                },
            ),
            // Q.931 Cause Code without advisory.
            (
                v(&[&[0x80, 0x09, 0, 0, 0, 12], &[0x00, 0x10], &[0x45]]),
                Avp::Q931Cause {
                    cause: 16,
                    message: 0x45,
                    advisory: Vec::new(),
                },
            ),
            // Challenge Response (M=1): 16 octets.
            (
                v(&[&[0x80, 0x16, 0, 0, 0, 13], &[0x11; 16]]),
                Avp::ChallengeResponse([0x11; 16]),
            ),
            // Assigned Session ID (M=1).
            (
                v(&[&[0x80, 0x08, 0, 0, 0, 14], &[0x12, 0x34]]),
                Avp::AssignedSessionId(0x1234),
            ),
            // Call Serial Number (M=1).
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 15], &[0xde, 0xad, 0xbe, 0xef]]),
                Avp::CallSerialNumber(0xdead_beef),
            ),
            // Minimum BPS (M=1): 9600.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 16], &[0, 0, 0x25, 0x80]]),
                Avp::MinimumBps(9600),
            ),
            // Maximum BPS (M=1): 100 Mbit/s.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 17], &[0x05, 0xf5, 0xe1, 0x00]]),
                Avp::MaximumBps(100_000_000),
            ),
            // Bearer Type (M=1): digital.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 18], &[0, 0, 0, 1]]),
                Avp::BearerType(1),
            ),
            // Framing Type (M=1): sync.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 19], &[0, 0, 0, 1]]),
                Avp::FramingType(1),
            ),
            // Called Number (M=1).
            (
                v(&[&[0x80, 0x09, 0, 0, 0, 21], b"100"]),
                Avp::CalledNumber(b"100".to_vec()),
            ),
            // Calling Number (M=1).
            (
                v(&[&[0x80, 0x09, 0, 0, 0, 22], b"200"]),
                Avp::CallingNumber(b"200".to_vec()),
            ),
            // Sub-Address (M=1).
            (
                v(&[&[0x80, 0x07, 0, 0, 0, 23], b"7"]),
                Avp::SubAddress(b"7".to_vec()),
            ),
            // (Tx) Connect Speed (M=1): 100 Mbit/s.
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 24], &[0x05, 0xf5, 0xe1, 0x00]]),
                Avp::TxConnectSpeed(100_000_000),
            ),
            // Physical Channel ID (M=0).
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 25], &[0, 0, 0, 5]]),
                Avp::PhysicalChannelId(5),
            ),
            // Initial Received LCP CONFREQ (M=0): MRU 1500.
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 26], &[0x01, 0x04, 0x05, 0xdc]]),
                Avp::InitialReceivedLcpConfreq(vec![0x01, 0x04, 0x05, 0xdc]),
            ),
            // Last Sent LCP CONFREQ (M=0): magic number.
            (
                v(&[
                    &[0x00, 0x0c, 0, 0, 0, 27],
                    &[0x05, 0x06, 0x11, 0x22, 0x33, 0x44],
                ]),
                Avp::LastSentLcpConfreq(vec![0x05, 0x06, 0x11, 0x22, 0x33, 0x44]),
            ),
            // Last Received LCP CONFREQ (M=0): auth PAP.
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 28], &[0x03, 0x04, 0xc0, 0x23]]),
                Avp::LastReceivedLcpConfreq(vec![0x03, 0x04, 0xc0, 0x23]),
            ),
            // Proxy Authen Type (M=0): CHAP.
            (
                v(&[&[0x00, 0x08, 0, 0, 0, 29], &[0, 2]]),
                Avp::ProxyAuthenType(proxy_authen_type::CHAP),
            ),
            // Proxy Authen Name (M=0).
            (
                v(&[&[0x00, 0x0b, 0, 0, 0, 30], b"test1"]),
                Avp::ProxyAuthenName(b"test1".to_vec()),
            ),
            // Proxy Authen Challenge (M=0).
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 31], &[1, 2, 3, 4]]),
                Avp::ProxyAuthenChallenge(vec![1, 2, 3, 4]),
            ),
            // Proxy Authen ID (M=0): reserved octet, then the PPP ID.
            (
                v(&[&[0x00, 0x08, 0, 0, 0, 32], &[0, 7]]),
                Avp::ProxyAuthenId(7),
            ),
            // Proxy Authen Response (M=0).
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 33], &[0xa1, 0xa2, 0xa3, 0xa4]]),
                Avp::ProxyAuthenResponse(vec![0xa1, 0xa2, 0xa3, 0xa4]),
            ),
            // Call Errors (M=1): reserved, CRC, framing, hardware overruns,
            // buffer overruns, time-outs, alignment.
            (
                v(&[
                    &[0x80, 0x20, 0, 0, 0, 34],
                    &[0, 0],
                    &[0, 0, 0, 1],
                    &[0, 0, 0, 2],
                    &[0, 0, 0, 3],
                    &[0, 0, 0, 4],
                    &[0, 0, 0, 5],
                    &[0, 0, 0, 6],
                ]),
                Avp::CallErrors(CallErrors {
                    crc: 1,
                    framing: 2,
                    hardware_overruns: 3,
                    buffer_overruns: 4,
                    timeouts: 5,
                    alignment: 6,
                }),
            ),
            // ACCM (M=1): reserved, send, receive.
            (
                v(&[
                    &[0x80, 0x10, 0, 0, 0, 35],
                    &[0, 0],
                    &[0xff; 4],
                    &[0, 0, 0, 0],
                ]),
                Avp::Accm {
                    send: 0xffff_ffff,
                    receive: 0,
                },
            ),
            // Random Vector (M=1).
            (
                v(&[&[0x80, 0x0a, 0, 0, 0, 36], &[0x5a, 0x5b, 0x5c, 0x5d]]),
                Avp::RandomVector(vec![0x5a, 0x5b, 0x5c, 0x5d]),
            ),
            // Private Group ID (M=0).
            (
                v(&[&[0x00, 0x07, 0, 0, 0, 37], b"g"]),
                Avp::PrivateGroupId(b"g".to_vec()),
            ),
            // Rx Connect Speed (M=0): 64000.
            (
                v(&[&[0x00, 0x0a, 0, 0, 0, 38], &[0, 0, 0xfa, 0x00]]),
                Avp::RxConnectSpeed(64000),
            ),
            // Sequencing Required (M=1): no value.
            (v(&[&[0x80, 0x06, 0, 0, 0, 39]]), Avp::SequencingRequired),
            // A Microsoft (311) vendor AVP, M=0.
            (
                v(&[&[0x00, 0x08, 0x01, 0x37, 0, 1], &[0xab, 0xcd]]),
                Avp::Unknown {
                    header: AvpHeader {
                        mandatory: false,
                        hidden: false,
                        reserved_bits: false,
                        vendor_id: 311,
                        attr_type: 1,
                    },
                    value: vec![0xab, 0xcd],
                },
            ),
            // IETF attribute 20 is unassigned in RFC 2661; M=1 kept.
            (
                v(&[&[0x80, 0x07, 0, 0, 0, 20], &[0xff]]),
                Avp::Unknown {
                    header: AvpHeader {
                        mandatory: true,
                        hidden: false,
                        reserved_bits: false,
                        vendor_id: 0,
                        attr_type: 20,
                    },
                    value: vec![0xff],
                },
            ),
            // An Assigned Tunnel ID with every reserved bit set is
            // unrecognized (§4.1), not a tunnel ID.
            (
                v(&[&[0xbc, 0x08, 0, 0, 0, 9], &[0, 1]]),
                Avp::Unknown {
                    header: AvpHeader {
                        mandatory: true,
                        hidden: false,
                        reserved_bits: true,
                        vendor_id: 0,
                        attr_type: 9,
                    },
                    value: vec![0, 1],
                },
            ),
        ]
    }

    #[test]
    fn every_avp_parses_and_emits_both_ways() {
        for (bytes, expected) in vectors() {
            assert_eq!(parse(&bytes), Ok(expected.clone()), "parse {bytes:02x?}");
            assert_eq!(emit(&expected), bytes, "emit {expected:?}");
            let mut value = vec![];
            expected.emit_value(&mut value);
            assert_eq!(value, bytes[6..], "emit_value {expected:?}");
        }
    }

    #[test]
    fn vectors_cover_every_ietf_type() {
        let seen: Vec<u16> = vectors()
            .iter()
            .filter(|(_, avp)| !matches!(avp, Avp::Unknown { .. }))
            .map(|(_, avp)| u16::from(avp.attr_type()))
            .collect();
        for attr in (0..=39).filter(|&a| a != 20) {
            assert!(seen.contains(&attr), "no vector for attribute {attr}");
            assert!(!matches!(AvpType::from(attr), AvpType::Unknown(_)));
        }
    }

    #[test]
    fn mandatory_bits_follow_rfc() {
        // §4.4: the AVPs whose definitions say "The M-bit ... MUST be set to 0".
        let optional = [5, 6, 8, 25, 26, 27, 28, 29, 30, 31, 32, 33, 37, 38];
        for (_, avp) in vectors() {
            if let Avp::Unknown { header, .. } = &avp {
                assert_eq!(avp.mandatory(), header.mandatory);
                continue;
            }
            let attr = u16::from(avp.attr_type());
            assert_eq!(
                avp.mandatory(),
                !optional.contains(&attr),
                "attribute {attr}"
            );
        }
    }

    #[test]
    fn result_code_edge_lengths() {
        // A message with error code 0 is what an error-less message becomes.
        let code = Avp::ResultCode(ResultCode {
            result: 1,
            error: None,
            message: Some(b"m".to_vec()),
        });
        assert_eq!(emit(&code), [0x80, 0x0b, 0, 0, 0, 1, 0, 1, 0, 0, b'm']);
        // Value of 3 bytes: neither "no error code" nor "with error code".
        assert_eq!(
            parse(&[0x80, 0x09, 0, 0, 0, 1, 0, 1, 0]),
            Err(WireError::AvpValueLength { attr: 1 })
        );
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        // (attribute, the only valid value length)
        let fixed = [
            (0, 2),
            (2, 2),
            (3, 4),
            (4, 4),
            (5, 8),
            (6, 2),
            (9, 2),
            (10, 2),
            (13, 16),
            (14, 2),
            (15, 4),
            (16, 4),
            (17, 4),
            (18, 4),
            (19, 4),
            (24, 4),
            (25, 4),
            (29, 2),
            (32, 2),
            (34, 26),
            (35, 10),
            (38, 4),
            (39, 0),
        ];
        for (attr, good) in fixed {
            let good: usize = good;
            for len in [good.saturating_sub(1), good + 1, 0] {
                if len == good {
                    continue;
                }
                let mut bytes = vec![0x80, (6 + len) as u8, 0, 0, 0, attr as u8];
                bytes.resize(6 + len, 1);
                assert_eq!(
                    parse(&bytes),
                    Err(WireError::AvpValueLength { attr }),
                    "attribute {attr} length {len}"
                );
            }
        }
        // At least one octet: Result Code, Host Name, Challenge; at least
        // three: Q.931 Cause Code.
        for (attr, short) in [(1, 0), (1, 1), (7, 0), (11, 0), (12, 2)] {
            let mut bytes = vec![0x80, (6 + short) as u8, 0, 0, 0, attr as u8];
            bytes.resize(6 + short, 1);
            assert_eq!(parse(&bytes), Err(WireError::AvpValueLength { attr }));
        }
    }

    #[test]
    fn zero_receive_window_is_out_of_range() {
        assert_eq!(
            parse(&[0x80, 0x08, 0, 0, 0, 10, 0, 0]),
            Err(WireError::AvpValueRange { attr: 10 })
        );
        // A zero Assigned Session ID is left to the state machine.
        assert_eq!(
            parse(&[0x80, 0x08, 0, 0, 0, 14, 0, 0]),
            Ok(Avp::AssignedSessionId(0))
        );
    }

    #[test]
    fn reserved_octets_are_ignored_on_receive() {
        // §4.4.5 says the first octet of Proxy Authen ID MUST be 0; a peer
        // that sets it still gets its ID read.
        assert_eq!(
            parse(&[0x00, 0x08, 0, 0, 0, 32, 9, 7]),
            Ok(Avp::ProxyAuthenId(7))
        );
        let accm = [0x80, 0x10, 0, 0, 0, 35, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(
            parse(&accm),
            Ok(Avp::Accm {
                send: 1,
                receive: 2
            })
        );
    }

    #[test]
    fn unhidden_unknown_clears_h_bit() {
        // The caller unhid the value; the kept header no longer says hidden.
        let bytes = [0xc0, 0x0a, 0x01, 0x37, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let avp = raw(&bytes);
        assert!(avp.header.hidden);
        match Avp::parse(&avp, &[0xab]) {
            Ok(Avp::Unknown { header, value }) => {
                assert!(!header.hidden && header.mandatory);
                assert_eq!(value, [0xab]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_attr_type_never_aliases_an_ietf_type() {
        let (_, avp) = vectors().pop().unwrap();
        assert_eq!(avp.attr_type(), AvpType::Unknown(9));
        assert_ne!(avp.attr_type(), AvpType::AssignedTunnelId);
    }
}
