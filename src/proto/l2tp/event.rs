//! What an endpoint tells its owner.

use std::net::SocketAddr;
use std::time::Instant;

use crate::wire::l2tp::avps::{CallErrors, ResultCode};

/// Why a tunnel went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelDownReason {
    /// The peer sent StopCCN with this result.
    PeerStop(ResultCode),
    /// We sent StopCCN with this result (a command, a limit or a fault).
    LocalStop(ResultCode),
    /// Retransmissions ran out: the peer is gone (§5.8).
    PeerUnreachable,
    /// The tunnel did not finish its setup in time.
    SetupTimeout,
}

/// Why a session went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionDownReason {
    /// The peer sent CDN with this result.
    PeerDisconnect(ResultCode),
    /// We sent CDN with this result.
    LocalDisconnect(ResultCode),
    /// Its tunnel went down.
    TunnelDown,
    /// The call did not finish its setup in time.
    SetupTimeout,
}

/// Proxy LCP data the LAC forwards in ICCN (§4.4.5): the LCP options of the
/// CONFREQs it exchanged with the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyLcp {
    /// Initial Received LCP CONFREQ.
    pub initial_received: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ.
    pub last_sent: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ.
    pub last_received: Option<Vec<u8>>,
}

/// Proxy authentication data the LAC forwards in ICCN (§4.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyAuth {
    /// Proxy Authen Type.
    pub authen_type: Option<u16>,
    /// Proxy Authen Name.
    pub name: Option<Vec<u8>>,
    /// Proxy Authen Challenge.
    pub challenge: Option<Vec<u8>>,
    /// Proxy Authen ID.
    pub id: Option<u8>,
    /// Proxy Authen Response.
    pub response: Option<Vec<u8>>,
}

/// What the call request and connect messages said about a call; everything
/// the PPP layer and accounting need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallInfo {
    /// Call Serial Number.
    pub call_serial_number: Option<u32>,
    /// Bearer Type.
    pub bearer_type: Option<u32>,
    /// Framing Type.
    pub framing_type: Option<u32>,
    /// Calling Number (e.g. the DSL line ID).
    pub calling_number: Option<Vec<u8>>,
    /// Called Number.
    pub called_number: Option<Vec<u8>>,
    /// Sub-Address.
    pub sub_address: Option<Vec<u8>>,
    /// Tx Connect Speed, bits per second.
    pub tx_connect_speed: Option<u32>,
    /// Rx Connect Speed, bits per second.
    pub rx_connect_speed: Option<u32>,
    /// Physical Channel ID.
    pub physical_channel_id: Option<u32>,
    /// Private Group ID.
    pub private_group_id: Option<Vec<u8>>,
    /// Minimum BPS (outgoing calls).
    pub minimum_bps: Option<u32>,
    /// Maximum BPS (outgoing calls).
    pub maximum_bps: Option<u32>,
    /// The peer requires sequence numbers on data messages (§5.4.5 / §4.4.4).
    pub sequencing_required: bool,
    /// Proxy LCP AVPs.
    pub proxy_lcp: ProxyLcp,
    /// Proxy authentication AVPs.
    pub proxy_auth: ProxyAuth,
}

/// An event for the endpoint's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A control connection finished its setup.
    TunnelUp {
        /// Our tunnel ID.
        tunnel: u16,
        /// The peer's tunnel ID.
        peer_tunnel: u16,
        /// The peer's address.
        remote: SocketAddr,
        /// The peer's Host Name AVP.
        host_name: Vec<u8>,
    },
    /// A control connection is gone (all its sessions went down first).
    TunnelDown {
        /// Our tunnel ID.
        tunnel: u16,
        /// Why.
        reason: TunnelDownReason,
    },
    /// A call is connected: PPP may start.
    SessionUp {
        /// Our tunnel ID.
        tunnel: u16,
        /// Our session ID.
        session: u16,
        /// The peer's tunnel ID (for data message headers).
        peer_tunnel: u16,
        /// The peer's session ID (for data message headers).
        peer_session: u16,
        /// What the call messages said.
        call: Box<CallInfo>,
        /// When the call was created (its ICRQ or OCRQ admitted, or our
        /// own request queued): where its setup time starts.
        started: Instant,
    },
    /// A session is gone.
    SessionDown {
        /// Our tunnel ID.
        tunnel: u16,
        /// Our session ID.
        session: u16,
        /// Why.
        reason: SessionDownReason,
    },
    /// The LAC reported line errors (WEN, §6.15).
    WanErrorNotify {
        /// Our tunnel ID.
        tunnel: u16,
        /// Our session ID.
        session: u16,
        /// The counters.
        errors: CallErrors,
    },
    /// The peer set the PPP ACCMs (SLI, §6.16).
    SetLinkInfo {
        /// Our tunnel ID.
        tunnel: u16,
        /// Our session ID.
        session: u16,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        receive_accm: u32,
    },
}
