//! The XenStore wire protocol, as defined by `xen/include/public/io/xs_wire.h`
//! (message types, error names, the `xsd_sockmsg` header, limits) and the shared
//! ring page `struct xenstore_domain_interface` (`docs/misc/xenstore-ring.txt`).
//!
//! Constants keep Xen's C names. Nothing here parses or validates a message:
//! that is the XenStore codec's job.

/// `enum xsd_sockmsg_type`: the `type` field of a message header.
pub type XsdSockmsgType = u32;

pub const XS_CONTROL: XsdSockmsgType = 0;
/// Deprecated alias of [`XS_CONTROL`].
pub const XS_DEBUG: XsdSockmsgType = XS_CONTROL;
pub const XS_DIRECTORY: XsdSockmsgType = 1;
pub const XS_READ: XsdSockmsgType = 2;
pub const XS_GET_PERMS: XsdSockmsgType = 3;
pub const XS_WATCH: XsdSockmsgType = 4;
pub const XS_UNWATCH: XsdSockmsgType = 5;
pub const XS_TRANSACTION_START: XsdSockmsgType = 6;
pub const XS_TRANSACTION_END: XsdSockmsgType = 7;
pub const XS_INTRODUCE: XsdSockmsgType = 8;
pub const XS_RELEASE: XsdSockmsgType = 9;
pub const XS_GET_DOMAIN_PATH: XsdSockmsgType = 10;
pub const XS_WRITE: XsdSockmsgType = 11;
pub const XS_MKDIR: XsdSockmsgType = 12;
pub const XS_RM: XsdSockmsgType = 13;
pub const XS_SET_PERMS: XsdSockmsgType = 14;
pub const XS_WATCH_EVENT: XsdSockmsgType = 15;
pub const XS_ERROR: XsdSockmsgType = 16;
pub const XS_IS_DOMAIN_INTRODUCED: XsdSockmsgType = 17;
pub const XS_RESUME: XsdSockmsgType = 18;
pub const XS_SET_TARGET: XsdSockmsgType = 19;
// 20 was XS_RESTRICT, removed from the protocol; the value stays invalid.
pub const XS_RESET_WATCHES: XsdSockmsgType = XS_SET_TARGET + 2;
pub const XS_DIRECTORY_PART: XsdSockmsgType = 22;
pub const XS_GET_FEATURE: XsdSockmsgType = 23;
pub const XS_SET_FEATURE: XsdSockmsgType = 24;
pub const XS_GET_QUOTA: XsdSockmsgType = 25;
pub const XS_SET_QUOTA: XsdSockmsgType = 26;
/// Number of valid types (one more than the highest).
pub const XS_TYPE_COUNT: XsdSockmsgType = 27;
/// Guaranteed to remain an invalid type.
pub const XS_INVALID: XsdSockmsgType = 0xffff;

/// `xsd_errors[]`: the error names a daemon may send in an `XS_ERROR` reply,
/// with the Linux errno each stands for, in Xen's table order (new errors are
/// only ever appended). Clients map an unknown name to `EINVAL`.
pub const XSD_ERRORS: [(i32, &str); 16] = [
    (22, "EINVAL"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (21, "EISDIR"),
    (2, "ENOENT"),
    (12, "ENOMEM"),
    (28, "ENOSPC"),
    (5, "EIO"),
    (39, "ENOTEMPTY"),
    (38, "ENOSYS"),
    (30, "EROFS"),
    (16, "EBUSY"),
    (11, "EAGAIN"),
    (106, "EISCONN"),
    (7, "E2BIG"),
    (1, "EPERM"),
];

/// `struct xsd_sockmsg`: the 16-byte header in front of every message, in the
/// byte order of the machine (little-endian on x86).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `XS_???`.
    pub type_: u32,
    /// Request identifier, echoed in the daemon's response.
    pub req_id: u32,
    /// Transaction id (0 if not related to a transaction).
    pub tx_id: u32,
    /// Length of the payload following the header.
    pub len: u32,
}

/// Size of [`XsdSockmsg`] on the wire.
pub const XSD_SOCKMSG_SIZE: usize = 16;

/// `enum xs_watch_type`: index of the path in a watch event's strings.
pub const XS_WATCH_PATH: usize = 0;
/// `enum xs_watch_type`: index of the token in a watch event's strings.
pub const XS_WATCH_TOKEN: usize = 1;

/// `XENSTORE_RING_SIZE`: bytes in each of the two rings of the shared page.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`: ring indexes are free-running 32-bit counters.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX(idx)`: the offset in a ring of a free-running index.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    (idx as usize) & (XENSTORE_RING_SIZE - 1)
}

/// `struct xenstore_domain_interface`: the XenStore page shared with a guest.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenstoreDomainInterface {
    /// Requests to the xenstore daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and asynchronous watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    pub req_cons: XenstoreRingIdx,
    pub req_prod: XenstoreRingIdx,
    pub rsp_cons: XenstoreRingIdx,
    pub rsp_prod: XenstoreRingIdx,
    /// Bitmap of `XENSTORE_SERVER_FEATURE_*` supported by the server.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
    /// The domain's event channel for xenstored to signal (0: use INTRODUCE's).
    pub evtchn_port: u32,
}

/// Byte offsets of the fields of [`XenstoreDomainInterface`] in the page.
pub const XENSTORE_REQ_OFFSET: usize = 0;
pub const XENSTORE_RSP_OFFSET: usize = 1024;
pub const XENSTORE_REQ_CONS_OFFSET: usize = 2048;
pub const XENSTORE_REQ_PROD_OFFSET: usize = 2052;
pub const XENSTORE_RSP_CONS_OFFSET: usize = 2056;
pub const XENSTORE_RSP_PROD_OFFSET: usize = 2060;
pub const XENSTORE_SERVER_FEATURES_OFFSET: usize = 2064;
pub const XENSTORE_CONNECTION_OFFSET: usize = 2068;
pub const XENSTORE_ERROR_OFFSET: usize = 2072;
pub const XENSTORE_EVTCHN_PORT_OFFSET: usize = 2076;

/// `XENSTORE_PAYLOAD_MAX`: the largest payload in either direction.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest path relative to a domain's home.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// The ability to reconnect a ring.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// The presence of the "error" field in the ring page.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XS_WATCH` accepts a `<depth>` parameter.
pub const XENSTORE_SERVER_FEATURE_WATCHDEPTH: u32 = 4;
/// `DOMID_ANY` may be used in node permissions.
pub const XENSTORE_SERVER_FEATURE_DOMID_ANY: u32 = 8;

/// `connection` field: the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `connection` field: reconnect in progress.
pub const XENSTORE_RECONNECT: u32 = 1;

/// `error` field: no error.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `error` field: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `error` field: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `error` field: protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn interface_layout_matches_xs_wire_h() {
        assert_eq!(
            offset_of!(XenstoreDomainInterface, req),
            XENSTORE_REQ_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, rsp),
            XENSTORE_RSP_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, req_cons),
            XENSTORE_REQ_CONS_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, req_prod),
            XENSTORE_REQ_PROD_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, rsp_cons),
            XENSTORE_RSP_CONS_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, rsp_prod),
            XENSTORE_RSP_PROD_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, server_features),
            XENSTORE_SERVER_FEATURES_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, connection),
            XENSTORE_CONNECTION_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, error),
            XENSTORE_ERROR_OFFSET
        );
        assert_eq!(
            offset_of!(XenstoreDomainInterface, evtchn_port),
            XENSTORE_EVTCHN_PORT_OFFSET
        );
        assert_eq!(size_of::<XenstoreDomainInterface>(), 2080);
        assert_eq!(size_of::<XsdSockmsg>(), XSD_SOCKMSG_SIZE);
    }

    #[test]
    fn ring_index_masking_wraps() {
        assert_eq!(mask_xenstore_idx(0), 0);
        assert_eq!(mask_xenstore_idx(1023), 1023);
        assert_eq!(mask_xenstore_idx(1024), 0);
        assert_eq!(mask_xenstore_idx(u32::MAX), 1023);
    }

    #[test]
    fn message_type_values_follow_the_header() {
        assert_eq!(XS_RESET_WATCHES, 21);
        assert_eq!(XS_SET_QUOTA + 1, XS_TYPE_COUNT);
        assert_eq!(XSD_ERRORS[0], (22, "EINVAL"));
        assert_eq!(XSD_ERRORS[15], (1, "EPERM"));
    }
}
