//! A whole control message: the Message Type plus its AVPs, owned.
//!
//! Parsing follows §4.1 and §4.3: the first AVP is the Message Type and is
//! never hidden; every hidden AVP is undone with the tunnel secret and the
//! most recent Random Vector before it. Emitting writes the Message Type
//! first and, when asked to hide AVPs, puts a Random Vector in front of them.

use super::avp::{AvpIter, AvpWriter, VENDOR_IETF};
use super::avps::{Avp, AvpType, CallErrors, MessageType, ResultCode};
use super::hidden;
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
        let mut iter = AvpIter::new(body);
        // A body with no AVP at all is a ZLB, which the caller handles
        // before it gets here.
        let first = iter.next().ok_or(WireError::Truncated)??;
        // §4.4.1: "The Message Type AVP ... MUST be the first AVP in a
        // message".
        let header = first.header;
        if header.vendor_id != VENDOR_IETF
            || header.reserved_bits
            || header.attr_type != u16::from(AvpType::MessageType)
        {
            return Err(WireError::MissingMessageType);
        }
        // §4.4.1: "This AVP MUST NOT be hidden".
        if header.hidden {
            return Err(WireError::HiddenMessageType);
        }
        let message_type = match Avp::parse(&first, first.value)? {
            Avp::MessageType(kind) => kind,
            _ => return Err(WireError::MissingMessageType),
        };

        let mut avps = Vec::new();
        // §4.3: a hidden AVP uses "the Random Vector AVP most closely
        // preceding" it.
        let mut random_vector: Option<Vec<u8>> = None;
        for raw in iter {
            let raw = raw?;
            let avp = if raw.header.hidden {
                let (Some(secret), Some(rv)) = (secret, random_vector.as_deref()) else {
                    return Err(WireError::HiddenWithoutKey);
                };
                let value = hidden::unhide(raw.header.attr_type, raw.value, secret, rv)?;
                Avp::parse(&raw, &value)?
            } else {
                Avp::parse(&raw, raw.value)?
            };
            if let Avp::RandomVector(rv) = &avp {
                random_vector = Some(rv.clone());
            }
            avps.push(avp);
        }
        Ok(ControlMessage { message_type, avps })
    }

    /// Append the message body (AVPs, no L2TP header) to `out`.
    ///
    /// With `hiding`, every AVP whose type is in `hiding.attrs` is sent
    /// hidden (H bit set, §4.3) under the nearest Random Vector before it.
    /// When such an AVP would come before any Random Vector of the message,
    /// a Random Vector AVP carrying `hiding.random_vector` is put right
    /// after the Message Type. Message Type, Random Vector and unknown AVPs
    /// (relayed verbatim) are never hidden. On error `out` may hold part of
    /// the message.
    pub fn emit(&self, out: &mut Vec<u8>, hiding: Option<&Hiding<'_>>) -> Result<(), WireError> {
        let mut writer = AvpWriter::new(out);
        Avp::MessageType(self.message_type).emit(&mut writer)?;

        let should_hide = |avp: &Avp| hiding.is_some_and(|h| Self::hideable(avp, h.attrs));
        // The Random Vector in force for the AVP being written.
        let mut random_vector: Option<&[u8]> = None;
        if let Some(h) = hiding {
            let needs_own_rv = self
                .avps
                .iter()
                .take_while(|avp| !matches!(avp, Avp::RandomVector(_)))
                .any(should_hide);
            if needs_own_rv {
                // §4.3: the Random Vector AVP "MUST precede the first AVP
                // with the H bit set".
                writer.push(Avp::RandomVector(Vec::new()).header(), &h.random_vector)?;
                random_vector = Some(&h.random_vector);
            }
        }

        let mut plain = Vec::new();
        let mut cipher = Vec::new();
        for avp in &self.avps {
            if let Avp::RandomVector(rv) = avp {
                random_vector = Some(rv);
            }
            match (hiding, random_vector) {
                (Some(h), Some(rv)) if should_hide(avp) => {
                    let mut header = avp.header();
                    header.hidden = true;
                    plain.clear();
                    avp.emit_value(&mut plain);
                    cipher.clear();
                    hidden::hide(header.attr_type, &plain, h.secret, rv, 0, &mut cipher)?;
                    writer.push(header, &cipher)?;
                }
                _ => avp.emit(&mut writer)?,
            }
        }
        Ok(())
    }

    /// Whether `avp` is hidden when `attrs` is the set to hide.
    fn hideable(avp: &Avp, attrs: AvpTypeSet) -> bool {
        !matches!(
            avp,
            Avp::MessageType(_) | Avp::RandomVector(_) | Avp::Unknown { .. }
        ) && attrs.contains(u16::from(avp.attr_type()))
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

    /// Tie Breaker AVP value (§4.4.3).
    pub fn tie_breaker(&self) -> Option<[u8; 8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::TieBreaker(value) => Some(*value),
            _ => None,
        })
    }

    /// Firmware Revision AVP value (§4.4.3).
    pub fn firmware_revision(&self) -> Option<u16> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::FirmwareRevision(revision) => Some(*revision),
            _ => None,
        })
    }

    /// Vendor Name AVP value (§4.4.3).
    pub fn vendor_name(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::VendorName(name) => Some(name.as_slice()),
            _ => None,
        })
    }

    /// Framing Capabilities AVP value (§4.4.3, bits in [`caps`](super::avps::caps)).
    pub fn framing_capabilities(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::FramingCapabilities(bits) => Some(*bits),
            _ => None,
        })
    }

    /// Bearer Capabilities AVP value (§4.4.3, bits in [`caps`](super::avps::caps)).
    pub fn bearer_capabilities(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::BearerCapabilities(bits) => Some(*bits),
            _ => None,
        })
    }

    /// Random Vector AVP value: the first one of the message (§4.4.3).
    pub fn random_vector(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::RandomVector(rv) => Some(rv.as_slice()),
            _ => None,
        })
    }

    /// Q.931 Cause Code AVP value as (cause, message type, advisory) (§4.4.4).
    pub fn q931_cause(&self) -> Option<(u16, u8, &[u8])> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::Q931Cause {
                cause,
                message,
                advisory,
            } => Some((*cause, *message, advisory.as_slice())),
            _ => None,
        })
    }

    /// Call Serial Number AVP value (§4.4.4).
    pub fn call_serial_number(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::CallSerialNumber(serial) => Some(*serial),
            _ => None,
        })
    }

    /// Minimum BPS AVP value (§4.4.4).
    pub fn minimum_bps(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::MinimumBps(bps) => Some(*bps),
            _ => None,
        })
    }

    /// Maximum BPS AVP value (§4.4.4).
    pub fn maximum_bps(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::MaximumBps(bps) => Some(*bps),
            _ => None,
        })
    }

    /// Bearer Type AVP value (§4.4.4).
    pub fn bearer_type(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::BearerType(bits) => Some(*bits),
            _ => None,
        })
    }

    /// Framing Type AVP value (§4.4.4).
    pub fn framing_type(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::FramingType(bits) => Some(*bits),
            _ => None,
        })
    }

    /// Called Number AVP value (§4.4.4).
    pub fn called_number(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::CalledNumber(number) => Some(number.as_slice()),
            _ => None,
        })
    }

    /// Calling Number AVP value (§4.4.4).
    pub fn calling_number(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::CallingNumber(number) => Some(number.as_slice()),
            _ => None,
        })
    }

    /// Sub-Address AVP value (§4.4.4).
    pub fn sub_address(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::SubAddress(address) => Some(address.as_slice()),
            _ => None,
        })
    }

    /// (Tx) Connect Speed AVP value in bits per second (§4.4.4).
    pub fn tx_connect_speed(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::TxConnectSpeed(bps) => Some(*bps),
            _ => None,
        })
    }

    /// Rx Connect Speed AVP value in bits per second (§4.4.4).
    pub fn rx_connect_speed(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::RxConnectSpeed(bps) => Some(*bps),
            _ => None,
        })
    }

    /// Physical Channel ID AVP value (§4.4.4).
    pub fn physical_channel_id(&self) -> Option<u32> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::PhysicalChannelId(id) => Some(*id),
            _ => None,
        })
    }

    /// Private Group ID AVP value (§4.4.4).
    pub fn private_group_id(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::PrivateGroupId(id) => Some(id.as_slice()),
            _ => None,
        })
    }

    /// Whether the Sequencing Required AVP is present (§4.4.4).
    pub fn sequencing_required(&self) -> bool {
        self.avps
            .iter()
            .any(|avp| matches!(avp, Avp::SequencingRequired))
    }

    /// Initial Received LCP CONFREQ AVP value: LCP options (§4.4.5).
    pub fn initial_received_lcp_confreq(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::InitialReceivedLcpConfreq(options) => Some(options.as_slice()),
            _ => None,
        })
    }

    /// Last Sent LCP CONFREQ AVP value: LCP options (§4.4.5).
    pub fn last_sent_lcp_confreq(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::LastSentLcpConfreq(options) => Some(options.as_slice()),
            _ => None,
        })
    }

    /// Last Received LCP CONFREQ AVP value: LCP options (§4.4.5).
    pub fn last_received_lcp_confreq(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::LastReceivedLcpConfreq(options) => Some(options.as_slice()),
            _ => None,
        })
    }

    /// Proxy Authen Type AVP value (§4.4.5, see
    /// [`proxy_authen_type`](super::avps::proxy_authen_type)).
    pub fn proxy_authen_type(&self) -> Option<u16> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProxyAuthenType(kind) => Some(*kind),
            _ => None,
        })
    }

    /// Proxy Authen Name AVP value (§4.4.5).
    pub fn proxy_authen_name(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProxyAuthenName(name) => Some(name.as_slice()),
            _ => None,
        })
    }

    /// Proxy Authen Challenge AVP value (§4.4.5).
    pub fn proxy_authen_challenge(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProxyAuthenChallenge(challenge) => Some(challenge.as_slice()),
            _ => None,
        })
    }

    /// Proxy Authen ID AVP value: the PPP identifier (§4.4.5).
    pub fn proxy_authen_id(&self) -> Option<u8> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProxyAuthenId(id) => Some(*id),
            _ => None,
        })
    }

    /// Proxy Authen Response AVP value (§4.4.5).
    pub fn proxy_authen_response(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::ProxyAuthenResponse(response) => Some(response.as_slice()),
            _ => None,
        })
    }

    /// Call Errors AVP value (§4.4.6).
    pub fn call_errors(&self) -> Option<&CallErrors> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::CallErrors(errors) => Some(errors),
            _ => None,
        })
    }

    /// ACCM AVP value as (send, receive) (§4.4.6).
    pub fn accm(&self) -> Option<(u32, u32)> {
        self.avps.iter().find_map(|avp| match avp {
            Avp::Accm { send, receive } => Some((*send, *receive)),
            _ => None,
        })
    }
}
