//! Kernel TLS (kTLS) on a TCP socket: finding out once what the kernel
//! takes, handing a finished rustls session's keys to the kernel
//! (`TCP_ULP` "tls", then `SOL_TLS` `TLS_TX` and `TLS_RX`), reading a
//! record with its content type, and sending our `close_notify` as an
//! alert record. The kernel encrypts what is written
//! (`send`, `sendfile`, `splice`) and decrypts what is read; records that
//! carry no data (alerts, post-handshake messages) reach a reader only
//! through `recvmsg`'s control message, which is why the channel reads a
//! kTLS socket here rather than with `recv`. Uses libc and rustls's
//! extracted secrets; the structures are the kernel's `linux/tls.h`
//! (libc has only `SOL_TLS` and `TCP_ULP`).

use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;
/// The control message that carries a record's content type.
const TLS_SET_RECORD_TYPE: libc::c_int = 1;
const TLS_GET_RECORD_TYPE: libc::c_int = 2;

const TLS_1_2_VERSION: u16 = 0x0303;
const TLS_1_3_VERSION: u16 = 0x0304;
const TLS_CIPHER_AES_GCM_128: u16 = 51;
const TLS_CIPHER_AES_GCM_256: u16 = 52;
const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;

/// A record's content types (RFC 8446, section 5.1).
pub(crate) const RECORD_ALERT: u8 = 21;
pub(crate) const RECORD_HANDSHAKE: u8 = 22;
pub(crate) const RECORD_DATA: u8 = 23;

/// The ciphers, in the order [`Support`] keeps them.
const CIPHERS: [u16; 3] = [
    TLS_CIPHER_AES_GCM_128,
    TLS_CIPHER_AES_GCM_256,
    TLS_CIPHER_CHACHA20_POLY1305,
];

/// What this kernel's TLS takes, found once per process by [`probe`]:
/// `[version][cipher]`, TLS 1.2 then 1.3, ciphers as in [`CIPHERS`].
#[derive(Debug, Default)]
struct Support([[bool; 3]; 2]);

static SUPPORT: OnceLock<Support> = OnceLock::new();

/// Finds out, once per process, which versions and ciphers this kernel's
/// TLS takes in both directions, by handing each a throwaway key on a
/// throwaway loopback connection. A kernel asked for a cipher loads its
/// modules then, so the loops never wait on that later. Blocking: called
/// when a server's TLS settings are built, never on a loop.
pub(crate) fn probe() {
    SUPPORT.get_or_init(|| {
        let mut support = Support::default();
        'versions: for (v, version) in [TLS_1_2_VERSION, TLS_1_3_VERSION].into_iter().enumerate() {
            for (c, cipher) in CIPHERS.into_iter().enumerate() {
                match probe_one(version, cipher) {
                    Ok(taken) => support.0[v][c] = taken,
                    // No TLS in this kernel at all, or no loopback to ask on.
                    Err(_) => break 'versions,
                }
            }
        }
        tracing::debug!(?support, "kernel TLS: what this kernel takes");
        support
    });
}

/// `Ok(whether the kernel took the cipher both ways)`; `Err` where it has
/// no TLS, or the probe could not be made.
fn probe_one(version: u16, cipher: u16) -> io::Result<bool> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let _server = listener.accept()?;
    let fd = client.as_raw_fd();
    setsockopt(fd, libc::SOL_TCP, libc::TCP_ULP, b"tls")?;
    let info = crypto_info(version, cipher, &[0; 32], &[0; 12], 0);
    Ok(setsockopt(fd, libc::SOL_TLS, TLS_TX, &info).is_ok()
        && setsockopt(fd, libc::SOL_TLS, TLS_RX, &info).is_ok())
}

/// Whether the kernel may take some connection: [`probe`] ran and found
/// at least one version and cipher it takes.
pub(crate) fn available() -> bool {
    SUPPORT
        .get()
        .is_some_and(|s| s.0.iter().flatten().any(|&taken| taken))
}

fn setsockopt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is a live slice of `value.len()` bytes, which the
    // kernel only reads; `fd` is the caller's open socket.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One direction's `setsockopt` value, laid out as `linux/tls.h`'s
/// structure for the cipher: the version and the cipher (native-endian
/// `u16`s), then for AES-GCM the IV (the 12-byte nonce base `iv` but its
/// first 4 bytes), the key (16 or 32 bytes of `key`) and the salt (those
/// first 4 bytes), for ChaCha20-Poly1305 the whole nonce base and the
/// key; and last the next record's sequence number, big-endian. Every
/// field is bytes or an aligned `u16`, so the structures have no padding.
fn crypto_info(version: u16, cipher: u16, key: &[u8], iv: &[u8; 12], seq: u64) -> Vec<u8> {
    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&version.to_ne_bytes());
    info.extend_from_slice(&cipher.to_ne_bytes());
    if cipher == TLS_CIPHER_CHACHA20_POLY1305 {
        info.extend_from_slice(iv);
        info.extend_from_slice(&key[..32]);
    } else {
        let key_len = if cipher == TLS_CIPHER_AES_GCM_128 {
            16
        } else {
            32
        };
        info.extend_from_slice(&iv[4..]);
        info.extend_from_slice(&key[..key_len]);
        info.extend_from_slice(&iv[..4]);
    }
    info.extend_from_slice(&seq.to_be_bytes());
    info
}

/// The kernel's cipher for rustls's extracted keys, with the key and the
/// 12-byte nonce base.
fn cipher_of(secrets: &ConnectionTrafficSecrets) -> Option<(u16, &[u8], [u8; 12])> {
    let (cipher, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (TLS_CIPHER_AES_GCM_128, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (TLS_CIPHER_AES_GCM_256, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            (TLS_CIPHER_CHACHA20_POLY1305, key, iv)
        }
        _ => return None,
    };
    Some((cipher, key.as_ref(), iv.as_ref().try_into().ok()?))
}

/// Whether the kernel takes `version` and `suite`, as [`probe`] found: a
/// check made *before* rustls gives the keys up (that ends its session).
pub(crate) fn suits(version: ProtocolVersion, suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as S;
    let v = match version {
        ProtocolVersion::TLSv1_2 => 0,
        ProtocolVersion::TLSv1_3 => 1,
        _ => return false,
    };
    let c = match suite {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        S::TLS13_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => 2,
        _ => return false,
    };
    SUPPORT.get().is_some_and(|s| s.0[v][c])
}

/// Attaches the kernel's TLS to the TCP socket `fd` (`TCP_ULP`); until
/// [`install`] the socket carries bytes as before.
pub(crate) fn attach(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, libc::SOL_TCP, libc::TCP_ULP, b"tls")
}

/// Gives both directions' keys to the kernel, on a socket [`attach`]ed.
/// An error leaves the connection unusable (rustls has given its keys
/// up): the caller closes it.
pub(crate) fn install(
    fd: RawFd,
    version: ProtocolVersion,
    secrets: ExtractedSecrets,
) -> io::Result<()> {
    let version = match version {
        ProtocolVersion::TLSv1_3 => TLS_1_3_VERSION,
        _ => TLS_1_2_VERSION,
    };
    for (name, (seq, keys)) in [(TLS_TX, secrets.tx), (TLS_RX, secrets.rx)] {
        let (cipher, key, iv) = cipher_of(&keys).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "a cipher the kernel's TLS does not offer",
            )
        })?;
        setsockopt(
            fd,
            libc::SOL_TLS,
            name,
            &crypto_info(version, cipher, key, &iv, seq),
        )?;
    }
    Ok(())
}

/// What one read of a kTLS socket found.
pub(crate) struct Record {
    /// Bytes read (plaintext, or a control record's body).
    pub(crate) len: usize,
    /// Their record's content type ([`RECORD_DATA`] for application data).
    pub(crate) content_type: u8,
}

/// One `recvmsg` on the kTLS socket `fd` into `buf`'s spare capacity. Data
/// records' plaintext joins `buf`; a control record's body is left in the
/// spare capacity (not joined) and its first bytes are copied into
/// `control` (an alert's level and description).
pub(crate) fn recv_record(
    fd: RawFd,
    buf: &mut bytes::BytesMut,
    control: &mut [u8; 2],
) -> io::Result<Record> {
    // Room for one `cmsghdr` and its one-byte payload, aligned.
    let mut cmsg_space = [0u64; 4];
    loop {
        let spare = buf.spare_capacity_mut();
        let mut iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        // SAFETY: a zeroed `msghdr` is its empty value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_space.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&cmsg_space) as _;
        // SAFETY: `iov` points at the buffer's uninitialised tail, valid for
        // `iov_len` bytes, and the control buffer at `cmsg_space`, valid for
        // `msg_controllen` bytes; the kernel writes within both. `fd` is
        // the loop's open socket for the call.
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        let mut content_type = RECORD_DATA;
        // SAFETY: `msg` is as `recvmsg` left it; the CMSG macros walk the
        // control buffer it filled, within `msg_controllen`.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_TLS && (*cmsg).cmsg_type == TLS_GET_RECORD_TYPE {
                    content_type = *libc::CMSG_DATA(cmsg);
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if content_type == RECORD_DATA {
            // SAFETY: `recvmsg` initialised the first `n` bytes of the tail.
            unsafe { buf.set_len(buf.len() + n) };
        } else {
            let body = &buf.spare_capacity_mut()[..n.min(2)];
            for (slot, byte) in control.iter_mut().zip(body) {
                // SAFETY: `recvmsg` initialised these `n.min(2)` bytes.
                *slot = unsafe { byte.assume_init() };
            }
        }
        return Ok(Record {
            len: n,
            content_type,
        });
    }
}

/// Sends our `close_notify` (a warning-level alert, description 0) as an
/// alert record on the kTLS socket `fd`, without waiting: a full socket
/// buffer drops it, as it would any write at a close.
pub(crate) fn send_close_notify(fd: RawFd) -> io::Result<()> {
    let alert = [1u8, 0u8];
    let mut iov = libc::iovec {
        iov_base: alert.as_ptr() as *mut libc::c_void,
        iov_len: alert.len(),
    };
    let mut cmsg_space = [0u64; 4];
    // SAFETY: a zeroed `msghdr` is its empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_space.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as _;
    // SAFETY: the control buffer holds `CMSG_SPACE(1)` bytes (32 are
    // there), so the first header and its one data byte lie within it;
    // `sendmsg` reads `alert` (2 bytes, which it does not write) and the
    // control buffer; `fd` is the loop's open socket.
    let n = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_TLS;
        (*cmsg).cmsg_type = TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(cmsg) = RECORD_ALERT;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_are_the_kernels_structure_sizes() {
        // linux/tls.h: 4 bytes of header, then the cipher's fields.
        let sized = |cipher| crypto_info(TLS_1_3_VERSION, cipher, &[0; 32], &[0; 12], 0).len();
        assert_eq!(sized(TLS_CIPHER_AES_GCM_128), 40);
        assert_eq!(sized(TLS_CIPHER_AES_GCM_256), 56);
        assert_eq!(sized(TLS_CIPHER_CHACHA20_POLY1305), 56);
    }

    #[test]
    fn aes_gcm_takes_the_salt_from_the_nonce_base() {
        let key: Vec<u8> = (100..132).collect();
        let iv: [u8; 12] = std::array::from_fn(|i| i as u8);
        let info = crypto_info(TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, &key, &iv, 0x0102);
        assert_eq!(&info[..4], &[0x04, 0x03, 51, 0]);
        assert_eq!(&info[4..12], &iv[4..], "the IV");
        assert_eq!(&info[12..28], &key[..16], "the key");
        assert_eq!(&info[28..32], &iv[..4], "the salt");
        assert_eq!(
            &info[32..],
            &[0, 0, 0, 0, 0, 0, 1, 2],
            "the sequence, big-endian"
        );
        let info = crypto_info(TLS_1_2_VERSION, TLS_CIPHER_CHACHA20_POLY1305, &key, &iv, 7);
        assert_eq!(&info[..4], &[0x03, 0x03, 54, 0]);
        assert_eq!(&info[4..16], &iv[..]);
        assert_eq!(&info[16..48], &key[..]);
        assert_eq!(&info[48..], &7u64.to_be_bytes());
    }
}
