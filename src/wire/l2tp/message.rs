//! A whole control message: the Message Type plus its AVPs, owned.

use super::avps::{Avp, AvpType, MessageType, ResultCode};
use super::WireError;

/// A set of IETF attribute types (bit N = attribute N, for N < 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AvpTypeSet(pub u64);

impl AvpTypeSet {
    /// The empty set.
    pub const EMPTY: AvpTypeSet = AvpTypeSet(0);

    /// Whether `attr` (an IETF attribute number) is in the set.
    pub const fn contains(self, attr: u16) -> bool {
        attr < 64 && self.0 & (1 << attr) != 0
    }

    /// The set with `attr` added.
    pub const fn with(self, attr: u16) -> Self {
        if attr < 64 {
            AvpTypeSet(self.0 | (1 << attr))
        } else {
            self
        }
    }
}

/// How to hide AVPs when emitting (§4.3).
#[derive(Debug, Clone, Copy)]
pub struct Hiding<'a> {
    /// The tunnel's shared secret.
    pub secret: &'a [u8],
    /// Random Vector put before the hidden AVPs (when the message has none).
    pub random_vector: [u8; 16],
    /// Which attributes to hide. Message Type and Random Vector never are.
    pub attrs: AvpTypeSet,
}

/// A parsed or to-be-sent control message.
///
/// `avps` holds every AVP after the Message Type AVP, in wire order,
/// including any Random Vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The first AVP's value.
    pub message_type: MessageType,
    /// Every other AVP.
    pub avps: Vec<Avp>,
}

impl ControlMessage {
    /// A message with no AVPs beyond its type.
    pub fn new(message_type: MessageType) -> Self {
        ControlMessage {
            message_type,
            avps: Vec::new(),
        }
    }

    /// Builder: append an AVP.
    #[must_use]
    pub fn with(mut self, avp: Avp) -> Self {
        self.avps.push(avp);
        self
    }

    /// Parse a control message body (the bytes after the L2TP header).
    ///
    /// Hidden AVPs are unhidden with `secret` and the nearest preceding Random
    /// Vector; without either they fail with [`WireError::HiddenWithoutKey`].
    pub fn parse(body: &[u8], secret: Option<&[u8]>) -> Result<Self, WireError> {
        let _ = (body, secret);
        todo!("control message parse")
    }

    /// Append the message body (AVPs, no L2TP header) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>, hiding: Option<&Hiding<'_>>) -> Result<(), WireError> {
        let _ = (out, hiding);
        todo!("control message emit")
    }

    /// The first AVP of the given type.
    pub fn find(&self, attr: AvpType) -> Option<&Avp> {
        self.avps.iter().find(|avp| avp.attr_type() == attr)
    }

    /// The first unknown AVP with the M bit set, if any (§4.1).
    pub fn unknown_mandatory(&self) -> Option<&Avp> {
        self.avps
            .iter()
            .find(|avp| matches!(avp, Avp::Unknown { header, .. } if header.mandatory))
    }

    /// Assigned Tunnel ID AVP value.
    pub fn assigned_tunnel_id(&self) -> Option<u16> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::AssignedTunnelId(id) => Some(*id),
            _ => None,
        })
    }

    /// Assigned Session ID AVP value.
    pub fn assigned_session_id(&self) -> Option<u16> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::AssignedSessionId(id) => Some(*id),
            _ => None,
        })
    }

    /// Receive Window Size AVP value.
    pub fn receive_window_size(&self) -> Option<u16> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ReceiveWindowSize(size) => Some(*size),
            _ => None,
        })
    }

    /// Host Name AVP value.
    pub fn host_name(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::HostName(name) => Some(name.as_slice()),
            _ => None,
        })
    }

    /// Challenge AVP value.
    pub fn challenge(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::Challenge(challenge) => Some(challenge.as_slice()),
            _ => None,
        })
    }

    /// Challenge Response AVP value.
    pub fn challenge_response(&self) -> Option<&[u8; 16]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ChallengeResponse(response) => Some(response),
            _ => None,
        })
    }

    /// Result Code AVP value.
    pub fn result_code(&self) -> Option<&ResultCode> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ResultCode(code) => Some(code),
            _ => None,
        })
    }

    /// Protocol Version AVP value as (version, revision).
    pub fn protocol_version(&self) -> Option<(u8, u8)> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProtocolVersion { version, revision } => Some((*version, *revision)),
            _ => None,
        })
    }
}
