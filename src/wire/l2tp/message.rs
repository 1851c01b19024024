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
        // §4.4.1: Message Type must be the first AVP of every control
        // message.
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

        // Walking the AVP headers once more is cheaper than growing the
        // vector a few times on the way.
        let mut avps = Vec::with_capacity(iter.clone().count());
        // §4.3: a hidden AVP is keyed by the last Random Vector AVP before
        // it in the same message (kept as its index in `avps`).
        let mut random_vector: Option<usize> = None;
        for raw in iter {
            let raw = raw?;
            let avp = if raw.header.hidden {
                let rv = match random_vector.and_then(|at| avps.get(at)) {
                    Some(Avp::RandomVector(rv)) => Some(rv.as_slice()),
                    _ => None,
                };
                let (Some(secret), Some(rv)) = (secret, rv) else {
                    return Err(WireError::HiddenWithoutKey);
                };
                let value = hidden::unhide(raw.header.attr_type, raw.value, secret, rv)?;
                Avp::parse(&raw, &value)?
            } else {
                Avp::parse(&raw, raw.value)?
            };
            if matches!(avp, Avp::RandomVector(_)) {
                random_vector = Some(avps.len());
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
                // §4.3: a Random Vector must come before the first AVP
                // with the H bit set.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::l2tp::avp::{AvpHeader, AvpIter};
    use crate::wire::l2tp::avps::{caps, CallErrors};
    use crate::wire::l2tp::header::Packet;
    use md5::{Digest, Md5};

    const SECRET: &[u8] = b"secret";

    /// The control message body of a whole L2TP packet.
    fn body(packet: &[u8]) -> &[u8] {
        let view = Packet::new_checked(packet).unwrap();
        assert!(view.is_control());
        assert_eq!(view.length(), Some(packet.len() as u16));
        &packet[view.header_len()..]
    }

    /// Emit after a junk prefix and return only what was appended.
    fn emit(message: &ControlMessage, hiding: Option<&Hiding<'_>>) -> Vec<u8> {
        let mut out = vec![0xa5; 5];
        message.emit(&mut out, hiding).unwrap();
        assert_eq!(out[..5], [0xa5; 5]);
        out.split_off(5)
    }

    /// Parse `packet`'s body into `expected` and emit `expected` back into
    /// the same bytes.
    fn check_both_ways(packet: &[u8], expected: &ControlMessage) {
        let body = body(packet);
        assert_eq!(
            ControlMessage::parse(body, Some(SECRET)).as_ref(),
            Ok(expected)
        );
        assert_eq!(ControlMessage::parse(body, None).as_ref(), Ok(expected));
        assert_eq!(emit(expected, None), body);
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| (c as char).to_digit(16).unwrap() as u8)
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()
    }

    // ---- xl2tpd 1.3.18 (LAC, 10.99.0.2) against l2tpns 2.4.1 (LNS,
    // 10.99.0.1): every control message of xl2tpd-lac_l2tpns-lns.pcap.

    /// Frame 1, xl2tpd: SCCRQ with a Challenge.
    const XL2TPD_SCCRQ: &[u8] = &[
        // header: T L S ver 2, length 121, tunnel 0, session 0, Ns 0, Nr 0
        0xc8, 0x02, 0x00, 0x79, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        // Message Type (M): SCCRQ
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x01,
        // Protocol Version (M): 1.0
        0x80, 0x08, 0x00, 0x00, 0x00, 0x02, /**/ 0x01, 0x00,
        // Framing Capabilities (M): sync | async
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x03, /**/ 0x00, 0x00, 0x00, 0x03,
        // Bearer Capabilities (M): none
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x04, /**/ 0x00, 0x00, 0x00, 0x00,
        // Firmware Revision (not M): 0x0690
        0x00, 0x08, 0x00, 0x00, 0x00, 0x06, /**/ 0x06, 0x90, // Host Name (M): "vm"
        0x80, 0x08, 0x00, 0x00, 0x00, 0x07, /**/ 0x76, 0x6d,
        // Vendor Name (not M): "xelerance.com"
        0x00, 0x13, 0x00, 0x00, 0x00, 0x08, /**/ 0x78, 0x65, 0x6c, 0x65, 0x72, 0x61, 0x6e,
        0x63, 0x65, 0x2e, 0x63, 0x6f, 0x6d, // Assigned Tunnel ID (M): 24482
        0x80, 0x08, 0x00, 0x00, 0x00, 0x09, /**/ 0x5f, 0xa2,
        // Receive Window Size (M): 8
        0x80, 0x08, 0x00, 0x00, 0x00, 0x0a, /**/ 0x00, 0x08,
        // Challenge (M): 16 octets
        0x80, 0x16, 0x00, 0x00, 0x00, 0x0b, /**/ 0x91, 0x47, 0xef, 0xd1, 0xf7, 0x9b, 0x51,
        0xbf, 0x60, 0x4a, 0xbe, 0x21, 0x45, 0xac, 0x26, 0x23,
    ];

    /// Frame 2, l2tpns: SCCRP with the Challenge Response.
    const L2TPNS_SCCRP: &[u8] = &[
        // header: length 84, tunnel 24482, session 0, Ns 0, Nr 1
        0xc8, 0x02, 0x00, 0x54, 0x5f, 0xa2, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        // Message Type (M): SCCRP
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x02,
        // Protocol Version (M): 1.0
        0x80, 0x08, 0x00, 0x00, 0x00, 0x02, /**/ 0x01, 0x00,
        // Framing Capabilities (M): sync | async
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x03, /**/ 0x00, 0x00, 0x00, 0x03,
        // Host Name (M): "l2tpns-ref"
        0x80, 0x10, 0x00, 0x00, 0x00, 0x07, /**/ 0x6c, 0x32, 0x74, 0x70, 0x6e, 0x73, 0x2d,
        0x72, 0x65, 0x66, // Challenge Response (M): MD5(2 + "secret" + challenge)
        0x80, 0x16, 0x00, 0x00, 0x00, 0x0d, /**/ 0xdf, 0x85, 0xa5, 0xf8, 0x18, 0xdd, 0x62,
        0x35, 0xa6, 0xbf, 0xbe, 0xdf, 0x39, 0xb6, 0xbc, 0xdb,
        // Assigned Tunnel ID (M): 14
        0x80, 0x08, 0x00, 0x00, 0x00, 0x09, /**/ 0x00, 0x0e,
    ];

    /// Frame 3, xl2tpd: SCCCN (no Challenge Response: l2tpns sent no
    /// Challenge).
    const XL2TPD_SCCCN: &[u8] = &[
        // header: length 20, tunnel 14, session 0, Ns 1, Nr 1
        0xc8, 0x02, 0x00, 0x14, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
        // Message Type (M): SCCCN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x03,
    ];

    /// Frame 5, xl2tpd: ICRQ.
    const XL2TPD_ICRQ: &[u8] = &[
        // header: length 48, tunnel 14, session 0, Ns 2, Nr 1
        0xc8, 0x02, 0x00, 0x30, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
        // Message Type (M): ICRQ
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0a,
        // Assigned Session ID (M): 10931
        0x80, 0x08, 0x00, 0x00, 0x00, 0x0e, /**/ 0x2a, 0xb3,
        // Call Serial Number (M): 1
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x0f, /**/ 0x00, 0x00, 0x00, 0x01,
        // Bearer Type (M): none
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x12, /**/ 0x00, 0x00, 0x00, 0x00,
    ];

    /// Frame 6, l2tpns: ICRP.
    const L2TPNS_ICRP: &[u8] = &[
        // header: length 28, tunnel 24482, session 10931, Ns 1, Nr 3
        0xc8, 0x02, 0x00, 0x1c, 0x5f, 0xa2, 0x2a, 0xb3, 0x00, 0x01, 0x00, 0x03,
        // Message Type (M): ICRP
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0b,
        // Assigned Session ID (M): 28097
        0x80, 0x08, 0x00, 0x00, 0x00, 0x0e, /**/ 0x6d, 0xc1,
    ];

    /// Frame 7, xl2tpd: ICCN.
    const XL2TPD_ICCN: &[u8] = &[
        // header: length 50, tunnel 14, session 28097, Ns 3, Nr 2
        0xc8, 0x02, 0x00, 0x32, 0x00, 0x0e, 0x6d, 0xc1, 0x00, 0x03, 0x00, 0x02,
        // Message Type (M): ICCN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0c,
        // (Tx) Connect Speed (M): 0
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x18, /**/ 0x00, 0x00, 0x00, 0x00,
        // Framing Type (M): sync
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x13, /**/ 0x00, 0x00, 0x00, 0x01,
        // Rx Connect Speed (not M): 0
        0x00, 0x0a, 0x00, 0x00, 0x00, 0x26, /**/ 0x00, 0x00, 0x00, 0x00,
    ];

    /// Frame 10, xl2tpd: CDN after its pppd failed.
    const XL2TPD_CDN: &[u8] = &[
        // header: length 38, tunnel 14, session 28097, Ns 4, Nr 2
        0xc8, 0x02, 0x00, 0x26, 0x00, 0x0e, 0x6d, 0xc1, 0x00, 0x04, 0x00, 0x02,
        // Message Type (M): CDN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0e,
        // Result Code (M): 1 (lost carrier), error 0
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x01, /**/ 0x00, 0x01, 0x00, 0x00,
        // Assigned Session ID (M): 10931
        0x80, 0x08, 0x00, 0x00, 0x00, 0x0e, /**/ 0x2a, 0xb3,
    ];

    /// A ZLB ack from l2tpns (frame 4): header only.
    const L2TPNS_ZLB: &[u8] = &[
        // header: length 12, tunnel 24482, session 0, Ns 1, Nr 2
        0xc8, 0x02, 0x00, 0x0c, 0x5f, 0xa2, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
    ];

    fn xl2tpd_challenge() -> Vec<u8> {
        XL2TPD_SCCRQ[XL2TPD_SCCRQ.len() - 16..].to_vec()
    }

    #[test]
    fn xl2tpd_sccrq() {
        let expected = ControlMessage::new(MessageType::Sccrq)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::FramingCapabilities(
                caps::FRAMING_SYNC | caps::FRAMING_ASYNC,
            ))
            .with(Avp::BearerCapabilities(0))
            .with(Avp::FirmwareRevision(0x0690))
            .with(Avp::HostName(b"vm".to_vec()))
            .with(Avp::VendorName(b"xelerance.com".to_vec()))
            .with(Avp::AssignedTunnelId(24482))
            .with(Avp::ReceiveWindowSize(8))
            .with(Avp::Challenge(xl2tpd_challenge()));
        check_both_ways(XL2TPD_SCCRQ, &expected);
        assert_eq!(expected.protocol_version(), Some((1, 0)));
        assert_eq!(expected.framing_capabilities(), Some(3));
        assert_eq!(expected.bearer_capabilities(), Some(0));
        assert_eq!(expected.firmware_revision(), Some(0x0690));
        assert_eq!(expected.host_name(), Some(&b"vm"[..]));
        assert_eq!(expected.vendor_name(), Some(&b"xelerance.com"[..]));
        assert_eq!(expected.assigned_tunnel_id(), Some(24482));
        assert_eq!(expected.receive_window_size(), Some(8));
        assert_eq!(expected.tie_breaker(), None);
    }

    #[test]
    fn l2tpns_sccrp() {
        let response: [u8; 16] = L2TPNS_SCCRP[L2TPNS_SCCRP.len() - 24..][..16]
            .try_into()
            .unwrap();
        let expected = ControlMessage::new(MessageType::Sccrp)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::FramingCapabilities(3))
            .with(Avp::HostName(b"l2tpns-ref".to_vec()))
            .with(Avp::ChallengeResponse(response))
            .with(Avp::AssignedTunnelId(14));
        check_both_ways(L2TPNS_SCCRP, &expected);
    }

    /// §4.4.3: the response is MD5 over the Message Type value of the
    /// answering message as one octet (2 for SCCRP), the secret and the
    /// challenge. l2tpns answered xl2tpd's challenge exactly so.
    #[test]
    fn l2tpns_challenge_response_is_md5_of_type_secret_challenge() {
        let sccrq = ControlMessage::parse(body(XL2TPD_SCCRQ), None).unwrap();
        let sccrp = ControlMessage::parse(body(L2TPNS_SCCRP), None).unwrap();
        let mut md5 = Md5::new();
        md5.update([u16::from(MessageType::Sccrp) as u8]);
        md5.update(SECRET);
        md5.update(sccrq.challenge().unwrap());
        let digest: [u8; 16] = md5.finalize().into();
        assert_eq!(sccrp.challenge_response(), Some(&digest));
    }

    #[test]
    fn xl2tpd_session_setup_and_teardown() {
        check_both_ways(XL2TPD_SCCCN, &ControlMessage::new(MessageType::Scccn));

        let icrq = ControlMessage::new(MessageType::Icrq)
            .with(Avp::AssignedSessionId(10931))
            .with(Avp::CallSerialNumber(1))
            .with(Avp::BearerType(0));
        check_both_ways(XL2TPD_ICRQ, &icrq);
        assert_eq!(icrq.call_serial_number(), Some(1));
        assert_eq!(icrq.bearer_type(), Some(0));

        let icrp = ControlMessage::new(MessageType::Icrp).with(Avp::AssignedSessionId(28097));
        check_both_ways(L2TPNS_ICRP, &icrp);

        let iccn = ControlMessage::new(MessageType::Iccn)
            .with(Avp::TxConnectSpeed(0))
            .with(Avp::FramingType(caps::FRAMING_SYNC))
            .with(Avp::RxConnectSpeed(0));
        check_both_ways(XL2TPD_ICCN, &iccn);
        assert_eq!(iccn.tx_connect_speed(), Some(0));
        assert_eq!(iccn.rx_connect_speed(), Some(0));
        assert_eq!(iccn.framing_type(), Some(1));
        assert!(!iccn.sequencing_required());

        let cdn = ControlMessage::new(MessageType::Cdn)
            .with(Avp::ResultCode(ResultCode {
                result: 1,
                error: Some(0),
                message: None,
            }))
            .with(Avp::AssignedSessionId(10931));
        check_both_ways(XL2TPD_CDN, &cdn);
        assert_eq!(cdn.result_code().map(|code| code.result), Some(1));
    }

    #[test]
    fn zlb_is_not_a_control_message() {
        assert_eq!(
            ControlMessage::parse(body(L2TPNS_ZLB), None),
            Err(WireError::Truncated)
        );
    }

    // ---- The scripted LAC against l2tpns (probe-lac_l2tpns-lns.pcap).

    /// Frame 628, l2tpns: SCCRP to an SCCRQ without Challenge.
    const L2TPNS_SCCRP_NO_CHALLENGE: &[u8] = &[
        // header: length 62, tunnel 1, session 0, Ns 0, Nr 1
        0xc8, 0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        // Message Type (M): SCCRP
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x02,
        // Protocol Version (M): 1.0
        0x80, 0x08, 0x00, 0x00, 0x00, 0x02, /**/ 0x01, 0x00,
        // Framing Capabilities (M): sync | async
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x03, /**/ 0x00, 0x00, 0x00, 0x03,
        // Host Name (M): "l2tpns-ref"
        0x80, 0x10, 0x00, 0x00, 0x00, 0x07, /**/ 0x6c, 0x32, 0x74, 0x70, 0x6e, 0x73, 0x2d,
        0x72, 0x65, 0x66, // Assigned Tunnel ID (M): 17
        0x80, 0x08, 0x00, 0x00, 0x00, 0x09, /**/ 0x00, 0x11,
    ];

    /// Frame 33, LAC: ICCN at 100 Mbit/s.
    const PROBE_ICCN: &[u8] = &[
        // header: length 40, tunnel 15, session 28097, Ns 7, Nr 3
        0xc8, 0x02, 0x00, 0x28, 0x00, 0x0f, 0x6d, 0xc1, 0x00, 0x07, 0x00, 0x03,
        // Message Type (M): ICCN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0c,
        // (Tx) Connect Speed (M): 100000000
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x18, /**/ 0x05, 0xf5, 0xe1, 0x00,
        // Framing Type (M): sync
        0x80, 0x0a, 0x00, 0x00, 0x00, 0x13, /**/ 0x00, 0x00, 0x00, 0x01,
    ];

    /// Frame 603, LAC: CDN with a bare Result Code (no error code).
    const PROBE_CDN: &[u8] = &[
        // header: length 36, tunnel 15, session 28097, Ns 12, Nr 6
        0xc8, 0x02, 0x00, 0x24, 0x00, 0x0f, 0x6d, 0xc1, 0x00, 0x0c, 0x00, 0x06,
        // Message Type (M): CDN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x0e,
        // Result Code (M): 3 (administrative)
        0x80, 0x08, 0x00, 0x00, 0x00, 0x01, /**/ 0x00, 0x03,
        // Assigned Session ID (M): 1
        0x80, 0x08, 0x00, 0x00, 0x00, 0x0e, /**/ 0x00, 0x01,
    ];

    /// Frame 621, LAC: StopCCN.
    const PROBE_STOPCCN: &[u8] = &[
        // header: length 36, tunnel 15, session 0, Ns 17, Nr 6
        0xc8, 0x02, 0x00, 0x24, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x11, 0x00, 0x06,
        // Message Type (M): StopCCN
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x04,
        // Assigned Tunnel ID (M): 1
        0x80, 0x08, 0x00, 0x00, 0x00, 0x09, /**/ 0x00, 0x01,
        // Result Code (M): 1 (general request to clear)
        0x80, 0x08, 0x00, 0x00, 0x00, 0x01, /**/ 0x00, 0x01,
    ];

    #[test]
    fn probe_messages() {
        let sccrp = ControlMessage::new(MessageType::Sccrp)
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::FramingCapabilities(3))
            .with(Avp::HostName(b"l2tpns-ref".to_vec()))
            .with(Avp::AssignedTunnelId(17));
        check_both_ways(L2TPNS_SCCRP_NO_CHALLENGE, &sccrp);
        assert_eq!(sccrp.challenge_response(), None);

        let iccn = ControlMessage::new(MessageType::Iccn)
            .with(Avp::TxConnectSpeed(100_000_000))
            .with(Avp::FramingType(1));
        check_both_ways(PROBE_ICCN, &iccn);

        let cdn = ControlMessage::new(MessageType::Cdn)
            .with(Avp::ResultCode(ResultCode {
                result: 3,
                error: None,
                message: None,
            }))
            .with(Avp::AssignedSessionId(1));
        check_both_ways(PROBE_CDN, &cdn);

        let stop = ControlMessage::new(MessageType::StopCcn)
            .with(Avp::AssignedTunnelId(1))
            .with(Avp::ResultCode(ResultCode {
                result: 1,
                error: None,
                message: None,
            }));
        check_both_ways(PROBE_STOPCCN, &stop);
    }

    /// Offsets where two equally long byte strings differ.
    fn differences(a: &[u8], b: &[u8]) -> Vec<usize> {
        assert_eq!(a.len(), b.len());
        (0..a.len()).filter(|&i| a[i] != b[i]).collect()
    }

    /// Every control packet of both captures parses; everything re-emits
    /// to the same bytes except the M bit the scripted LAC set on Firmware
    /// Revision, which §4.4.3 says MUST be 0.
    #[test]
    fn every_captured_control_packet() {
        let xl2tpd = [
            XL2TPD_SCCRQ,
            L2TPNS_SCCRP,
            XL2TPD_SCCCN,
            L2TPNS_ZLB,
            XL2TPD_ICRQ,
            L2TPNS_ICRP,
            XL2TPD_ICCN,
            XL2TPD_CDN,
        ];
        let probe = include_str!("../../../tests/data/l2tpns-probe-control.txt");
        let probe: Vec<Vec<u8>> = probe
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| hex(line.split_whitespace().nth(2).unwrap()))
            .collect();
        assert_eq!(probe.len(), 104);

        let mut kinds = std::collections::BTreeMap::new();
        let mut zlbs = 0;
        for packet in xl2tpd
            .iter()
            .copied()
            .chain(probe.iter().map(Vec::as_slice))
        {
            let view = Packet::new_checked(packet).unwrap();
            let body = body(packet);
            if view.is_zlb() {
                zlbs += 1;
                assert_eq!(ControlMessage::parse(body, None), Err(WireError::Truncated));
                continue;
            }
            let message = ControlMessage::parse(body, Some(SECRET)).unwrap();
            assert!(message.unknown_mandatory().is_none());
            *kinds.entry(message.message_type.name()).or_insert(0) += 1;
            let out = emit(&message, None);
            if out == body {
                continue;
            }
            let firmware = AvpIter::new(body)
                .scan(0, |at, avp| {
                    let avp = avp.unwrap();
                    let start = *at;
                    *at += 6 + avp.value.len();
                    Some((start, avp.header))
                })
                .find(|(_, header)| header.attr_type == 6)
                .map(|(start, header)| {
                    assert!(header.mandatory);
                    start
                });
            assert_eq!(message.message_type, MessageType::Sccrq);
            assert_eq!(differences(&out, body), [firmware.unwrap()]);
        }
        assert_eq!(zlbs, 1 + 40);
        let expected = [
            ("CDN", 14),
            ("ICCN", 14),
            ("ICRP", 14),
            ("ICRQ", 14),
            ("SCCCN", 4),
            ("SCCRP", 4),
            ("SCCRQ", 4),
            ("StopCCN", 3),
        ];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
    }

    // ---- Hiding (§4.3).

    /// The Random Vector of the hidden vectors: 0x10 ..= 0x1f.
    const RV: [u8; 16] = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];

    /// SCCRQ with a hidden Assigned Tunnel ID; the ciphertext was computed
    /// with a separate Python script.
    const HIDDEN_TUNNEL_ID: &[u8] = &[
        // Message Type (M): SCCRQ
        0x80, 0x08, 0x00, 0x00, 0x00, 0x00, /**/ 0x00, 0x01,
        // Random Vector (M): 0x10 ..= 0x1f
        0x80, 0x16, 0x00, 0x00, 0x00, 0x24, /**/ 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
        0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        // Assigned Tunnel ID (M, H): 0x1234 hidden as length 2 + value
        0xc0, 0x0a, 0x00, 0x00, 0x00, 0x09, /**/ 0xbb, 0x53, 0x35, 0xed,
    ];

    fn hiding(attrs: &[u16]) -> Hiding<'static> {
        Hiding {
            secret: SECRET,
            random_vector: RV,
            attrs: attrs.iter().fold(AvpTypeSet::EMPTY, |set, &a| set.with(a)),
        }
    }

    #[test]
    fn hidden_known_answer_both_ways() {
        let with_rv = ControlMessage::new(MessageType::Sccrq)
            .with(Avp::RandomVector(RV.to_vec()))
            .with(Avp::AssignedTunnelId(0x1234));
        assert_eq!(
            ControlMessage::parse(HIDDEN_TUNNEL_ID, Some(SECRET)),
            Ok(with_rv.clone())
        );
        let hide_9 = hiding(&[9]);
        // The message's own Random Vector is used ...
        assert_eq!(emit(&with_rv, Some(&hide_9)), HIDDEN_TUNNEL_ID);
        // ... or `hiding.random_vector` is put right after Message Type.
        let without_rv =
            ControlMessage::new(MessageType::Sccrq).with(Avp::AssignedTunnelId(0x1234));
        assert_eq!(emit(&without_rv, Some(&hide_9)), HIDDEN_TUNNEL_ID);
    }

    #[test]
    fn hidden_without_key() {
        assert_eq!(
            ControlMessage::parse(HIDDEN_TUNNEL_ID, None),
            Err(WireError::HiddenWithoutKey)
        );
        // The hidden AVP moved in front of the Random Vector.
        let mut reordered = HIDDEN_TUNNEL_ID[..8].to_vec();
        reordered.extend_from_slice(&HIDDEN_TUNNEL_ID[30..]);
        reordered.extend_from_slice(&HIDDEN_TUNNEL_ID[8..30]);
        assert_eq!(
            ControlMessage::parse(&reordered, Some(SECRET)),
            Err(WireError::HiddenWithoutKey)
        );
        // A wrong secret does not silently give a value of the right size.
        assert!(ControlMessage::parse(HIDDEN_TUNNEL_ID, Some(b"wrong")).is_err());
    }

    #[test]
    fn hiding_uses_the_nearest_preceding_random_vector() {
        let second_rv = vec![0x77; 16];
        let message = ControlMessage::new(MessageType::Icrq)
            .with(Avp::CallingNumber(b"5551234".to_vec()))
            .with(Avp::RandomVector(second_rv.clone()))
            .with(Avp::CalledNumber(b"100".to_vec()));

        // Only Called Number, after the message's own Random Vector: no
        // extra Random Vector.
        let out = emit(&message, Some(&hiding(&[21])));
        let headers: Vec<AvpHeader> = AvpIter::new(&out).map(|avp| avp.unwrap().header).collect();
        let types: Vec<u16> = headers.iter().map(|h| h.attr_type).collect();
        assert_eq!(types, [0, 22, 36, 21]);
        let hidden: Vec<bool> = headers.iter().map(|h| h.hidden).collect();
        assert_eq!(hidden, [false, false, false, true]);
        let raw = AvpIter::new(&out).last().unwrap().unwrap();
        assert_eq!(
            hidden::unhide(21, raw.value, SECRET, &second_rv),
            Ok(b"100".to_vec())
        );
        assert_eq!(
            ControlMessage::parse(&out, Some(SECRET)),
            Ok(message.clone())
        );

        // Calling Number comes first, so our Random Vector goes in front.
        let out = emit(&message, Some(&hiding(&[21, 22])));
        let types: Vec<u16> = AvpIter::new(&out)
            .map(|avp| avp.unwrap().header.attr_type)
            .collect();
        assert_eq!(types, [0, 36, 22, 36, 21]);
        let mut expected = message.clone();
        expected.avps.insert(0, Avp::RandomVector(RV.to_vec()));
        assert_eq!(ControlMessage::parse(&out, Some(SECRET)), Ok(expected));

        // Nothing to hide: no Random Vector, no H bit.
        assert_eq!(emit(&message, Some(&hiding(&[7]))), emit(&message, None));
    }

    #[test]
    fn message_type_and_random_vector_are_never_hidden() {
        let message = ControlMessage::new(MessageType::Hello).with(Avp::RandomVector(vec![1; 16]));
        let out = emit(&message, Some(&hiding(&[0, 36])));
        assert!(AvpIter::new(&out).all(|avp| !avp.unwrap().header.hidden));
        assert_eq!(ControlMessage::parse(&out, None), Ok(message));
    }

    // ---- Errors.

    #[test]
    fn first_avp_must_be_a_plain_message_type() {
        // Host Name first.
        let host_first = [
            0x80, 0x08, 0, 0, 0, 7, b'h', b'n', 0x80, 0x08, 0, 0, 0, 0, 0, 6,
        ];
        assert_eq!(
            ControlMessage::parse(&host_first, None),
            Err(WireError::MissingMessageType)
        );
        // A vendor AVP numbered 0.
        let vendor = [0x80, 0x08, 0, 9, 0, 0, 0, 6];
        assert_eq!(
            ControlMessage::parse(&vendor, None),
            Err(WireError::MissingMessageType)
        );
        // Hidden Message Type.
        let hidden = [0xc0, 0x08, 0, 0, 0, 0, 0, 6];
        assert_eq!(
            ControlMessage::parse(&hidden, Some(SECRET)),
            Err(WireError::HiddenMessageType)
        );
        // Message Type with a 3-byte value.
        let long = [0x80, 0x09, 0, 0, 0, 0, 0, 6, 0];
        assert_eq!(
            ControlMessage::parse(&long, None),
            Err(WireError::AvpValueLength { attr: 0 })
        );
        // Truncated AVPs, first or later.
        assert_eq!(
            ControlMessage::parse(&[0x80, 0x08, 0], None),
            Err(WireError::Truncated)
        );
        let cut = &body(XL2TPD_ICRQ)[..body(XL2TPD_ICRQ).len() - 1];
        assert_eq!(ControlMessage::parse(cut, None), Err(WireError::Truncated));
        assert_eq!(ControlMessage::parse(&[], None), Err(WireError::Truncated));
    }

    #[test]
    fn unknown_message_type_and_unknown_mandatory_avp() {
        // Message type 5 is unassigned; a Microsoft vendor AVP with M set.
        let bytes = [
            0x80, 0x08, 0, 0, 0, 0, 0, 5, 0x80, 0x07, 0x01, 0x37, 0, 3, 0xee,
        ];
        let message = ControlMessage::parse(&bytes, None).unwrap();
        assert_eq!(message.message_type, MessageType::Unknown(5));
        assert!(matches!(
            message.unknown_mandatory(),
            Some(Avp::Unknown { header, .. }) if header.vendor_id == 311
        ));
        assert_eq!(emit(&message, None), bytes);
    }

    // ---- Every variant.

    fn every_variant() -> ControlMessage {
        ControlMessage::new(MessageType::Iccn)
            .with(Avp::ResultCode(ResultCode {
                result: 2,
                error: Some(8),
                message: Some(b"unknown mandatory AVP".to_vec()),
            }))
            .with(Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .with(Avp::FramingCapabilities(3))
            .with(Avp::BearerCapabilities(3))
            .with(Avp::TieBreaker([9, 8, 7, 6, 5, 4, 3, 2]))
            .with(Avp::FirmwareRevision(0x0102))
            .with(Avp::HostName(b"lns.example".to_vec()))
            .with(Avp::VendorName(b"lns".to_vec()))
            .with(Avp::AssignedTunnelId(42))
            .with(Avp::ReceiveWindowSize(16))
            .with(Avp::Challenge(vec![0x33; 16]))
            .with(Avp::Q931Cause {
                cause: 16,
                message: 0x45,
                advisory: b"normal".to_vec(),
            })
            .with(Avp::ChallengeResponse([0x44; 16]))
            .with(Avp::AssignedSessionId(7))
            .with(Avp::CallSerialNumber(123_456))
            .with(Avp::MinimumBps(56_000))
            .with(Avp::MaximumBps(1_000_000_000))
            .with(Avp::BearerType(caps::BEARER_DIGITAL))
            .with(Avp::FramingType(caps::FRAMING_SYNC))
            .with(Avp::CalledNumber(b"0800".to_vec()))
            .with(Avp::CallingNumber(b"0123456789".to_vec()))
            .with(Avp::SubAddress(b"12".to_vec()))
            .with(Avp::TxConnectSpeed(10_000_000))
            .with(Avp::PhysicalChannelId(0x0001_0002))
            .with(Avp::InitialReceivedLcpConfreq(vec![
                1, 4, 5, 0xdc, 5, 6, 1, 2, 3, 4,
            ]))
            .with(Avp::LastSentLcpConfreq(vec![1, 4, 5, 0xd4]))
            .with(Avp::LastReceivedLcpConfreq(vec![3, 5, 0xc2, 0x23, 5]))
            .with(Avp::ProxyAuthenType(2))
            .with(Avp::ProxyAuthenName(b"test1".to_vec()))
            .with(Avp::ProxyAuthenChallenge(vec![0x55; 16]))
            .with(Avp::ProxyAuthenId(0x2a))
            .with(Avp::ProxyAuthenResponse(vec![0x66; 16]))
            .with(Avp::CallErrors(CallErrors {
                crc: 1,
                framing: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeouts: 5,
                alignment: 6,
            }))
            .with(Avp::Accm {
                send: 0,
                receive: 0xffff_ffff,
            })
            .with(Avp::PrivateGroupId(b"vrf-a".to_vec()))
            .with(Avp::RxConnectSpeed(2_000_000))
            .with(Avp::SequencingRequired)
            .with(Avp::Unknown {
                header: AvpHeader {
                    mandatory: false,
                    hidden: false,
                    reserved_bits: false,
                    vendor_id: 9,
                    attr_type: 1,
                },
                value: b"cisco".to_vec(),
            })
    }

    #[test]
    fn every_variant_round_trips() {
        let message = every_variant();
        let out = emit(&message, None);
        assert_eq!(ControlMessage::parse(&out, None), Ok(message.clone()));

        assert_eq!(message.tie_breaker(), Some([9, 8, 7, 6, 5, 4, 3, 2]));
        assert_eq!(message.q931_cause(), Some((16, 0x45, &b"normal"[..])));
        assert_eq!(message.minimum_bps(), Some(56_000));
        assert_eq!(message.maximum_bps(), Some(1_000_000_000));
        assert_eq!(message.called_number(), Some(&b"0800"[..]));
        assert_eq!(message.calling_number(), Some(&b"0123456789"[..]));
        assert_eq!(message.sub_address(), Some(&b"12"[..]));
        assert_eq!(message.physical_channel_id(), Some(0x0001_0002));
        assert_eq!(message.private_group_id(), Some(&b"vrf-a"[..]));
        assert_eq!(
            message.initial_received_lcp_confreq().map(<[u8]>::len),
            Some(10)
        );
        assert_eq!(message.last_sent_lcp_confreq(), Some(&[1, 4, 5, 0xd4][..]));
        assert_eq!(
            message.last_received_lcp_confreq().map(<[u8]>::len),
            Some(5)
        );
        assert_eq!(message.proxy_authen_type(), Some(2));
        assert_eq!(message.proxy_authen_name(), Some(&b"test1"[..]));
        assert_eq!(message.proxy_authen_challenge(), Some(&[0x55; 16][..]));
        assert_eq!(message.proxy_authen_id(), Some(0x2a));
        assert_eq!(message.proxy_authen_response(), Some(&[0x66; 16][..]));
        assert_eq!(message.call_errors().map(|e| e.alignment), Some(6));
        assert_eq!(message.accm(), Some((0, 0xffff_ffff)));
        assert!(message.sequencing_required());
        assert_eq!(message.random_vector(), None);
        assert_eq!(
            message.find(AvpType::SubAddress),
            Some(&Avp::SubAddress(b"12".to_vec()))
        );
    }

    #[test]
    fn every_variant_round_trips_hidden() {
        let message = every_variant();
        let all = hiding(&(0..64).collect::<Vec<_>>());
        let out = emit(&message, Some(&all));
        // Everything but Message Type, our Random Vector and the vendor AVP
        // carries the H bit.
        let hidden: Vec<bool> = AvpIter::new(&out)
            .map(|avp| avp.unwrap().header.hidden)
            .collect();
        assert_eq!(hidden.len(), message.avps.len() + 2);
        assert!(!hidden[0] && !hidden[1] && !hidden[hidden.len() - 1]);
        assert!(hidden[2..hidden.len() - 1].iter().all(|&h| h));

        let mut expected = message.clone();
        expected.avps.insert(0, Avp::RandomVector(RV.to_vec()));
        assert_eq!(ControlMessage::parse(&out, Some(SECRET)), Ok(expected));
        assert_eq!(
            ControlMessage::parse(&out, None),
            Err(WireError::HiddenWithoutKey)
        );
    }

    // ---- Totality.

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random bytes and mutated real messages never make `parse` panic, and
    /// whatever parses re-emits and parses to the same value.
    #[test]
    fn parse_is_total() {
        let hidden_all = emit(
            &every_variant(),
            Some(&hiding(&(0..64).collect::<Vec<_>>())),
        );
        let seeds: Vec<Vec<u8>> = [
            body(XL2TPD_SCCRQ),
            body(L2TPNS_SCCRP),
            body(XL2TPD_ICRQ),
            body(XL2TPD_ICCN),
            body(XL2TPD_CDN),
            HIDDEN_TUNNEL_ID,
            &hidden_all,
            &emit(&every_variant(), None),
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect();

        let mut rng = XorShift(0x2661_0443_dead_beef);
        let mut parsed = 0;
        for round in 0..40_000 {
            let input: Vec<u8> = match round % 4 {
                // Pure noise, biased towards short inputs.
                0 => {
                    let max = if rng.below(4) == 0 { 600 } else { 40 };
                    let len = rng.below(max);
                    (0..len).map(|_| rng.next() as u8).collect()
                }
                // A real message cut short.
                1 => {
                    let seed = &seeds[rng.below(seeds.len())];
                    seed[..rng.below(seed.len() + 1)].to_vec()
                }
                // A real message with a few bytes changed (flags, lengths,
                // types, values alike).
                _ => {
                    let mut seed = seeds[rng.below(seeds.len())].clone();
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(seed.len());
                        seed[at] = match rng.below(3) {
                            0 => rng.next() as u8,
                            1 => seed[at] ^ (1 << rng.below(8)),
                            _ => seed[at].wrapping_add(1),
                        };
                    }
                    seed
                }
            };
            let secret = if round % 3 == 0 { None } else { Some(SECRET) };
            if let Ok(message) = ControlMessage::parse(&input, secret) {
                parsed += 1;
                let mut out = Vec::new();
                message.emit(&mut out, None).unwrap();
                assert_eq!(
                    ControlMessage::parse(&out, None),
                    Ok(message),
                    "{input:02x?}"
                );
            }
        }
        // The mutations must reach the typed parsers, not only fail early.
        assert!(parsed > 1_000, "only {parsed} inputs parsed");
    }
}
