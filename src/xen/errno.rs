//! Xen error numbers (xen/include/public/errno.h). Hypercalls return them
//! negated; [`Errno::from_ret`] turns a raw return value into a `Result`.

use core::fmt;

/// A Xen errno, positive (e.g. `Errno::ENOMEM` is 12).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EINTR: Errno = Errno(4);
    pub const EIO: Errno = Errno(5);
    pub const ENXIO: Errno = Errno(6);
    pub const E2BIG: Errno = Errno(7);
    pub const ENOEXEC: Errno = Errno(8);
    pub const EBADF: Errno = Errno(9);
    pub const ECHILD: Errno = Errno(10);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EFAULT: Errno = Errno(14);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EXDEV: Errno = Errno(18);
    pub const ENODEV: Errno = Errno(19);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const ENFILE: Errno = Errno(23);
    pub const EMFILE: Errno = Errno(24);
    pub const ENOSPC: Errno = Errno(28);
    pub const EROFS: Errno = Errno(30);
    pub const EMLINK: Errno = Errno(31);
    pub const EDOM: Errno = Errno(33);
    pub const ERANGE: Errno = Errno(34);
    pub const EDEADLK: Errno = Errno(35);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOLCK: Errno = Errno(37);
    pub const ENOSYS: Errno = Errno(38);
    pub const EBADRQC: Errno = Errno(56);
    pub const EBADSLT: Errno = Errno(57);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ENODATA: Errno = Errno(61);
    pub const ETIME: Errno = Errno(62);
    pub const EBADMSG: Errno = Errno(74);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EILSEQ: Errno = Errno(84);
    pub const ERESTART: Errno = Errno(85);
    pub const EUSERS: Errno = Errno(87);
    pub const ENOTSOCK: Errno = Errno(88);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const EADDRINUSE: Errno = Errno(98);
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    pub const ENOBUFS: Errno = Errno(105);
    pub const EISCONN: Errno = Errno(106);
    pub const ENOTCONN: Errno = Errno(107);
    pub const ESHUTDOWN: Errno = Errno(108);
    pub const ETOOMANYREFS: Errno = Errno(109);
    pub const ETIMEDOUT: Errno = Errno(110);
    pub const ECONNREFUSED: Errno = Errno(111);

    /// Interprets a raw hypercall return: negative values in the errno
    /// range are errors, everything else is a success value.
    pub fn from_ret(ret: i64) -> Result<u64, Errno> {
        if ret < 0 {
            // Values below -4095 are not errnos; report them as EIO rather
            // than truncating into a random errno.
            if ret < -4095 {
                Err(Errno::EIO)
            } else {
                Err(Errno(-ret as i32))
            }
        } else {
            Ok(ret as u64)
        }
    }

    /// Every number this module defines, with its name: all of Xen's
    /// `public/errno.h`, plus EISDIR, EROFS, ENOTEMPTY (names xenstored
    /// sends in XS_ERROR, with Linux's numbers) and ECONNREFUSED.
    const NAMES: &'static [(Errno, &'static str)] = &[
        (Errno::EPERM, "EPERM"),
        (Errno::ENOENT, "ENOENT"),
        (Errno::ESRCH, "ESRCH"),
        (Errno::EINTR, "EINTR"),
        (Errno::EIO, "EIO"),
        (Errno::ENXIO, "ENXIO"),
        (Errno::E2BIG, "E2BIG"),
        (Errno::ENOEXEC, "ENOEXEC"),
        (Errno::EBADF, "EBADF"),
        (Errno::ECHILD, "ECHILD"),
        (Errno::EAGAIN, "EAGAIN"),
        (Errno::ENOMEM, "ENOMEM"),
        (Errno::EACCES, "EACCES"),
        (Errno::EFAULT, "EFAULT"),
        (Errno::EBUSY, "EBUSY"),
        (Errno::EEXIST, "EEXIST"),
        (Errno::EXDEV, "EXDEV"),
        (Errno::ENODEV, "ENODEV"),
        (Errno::EISDIR, "EISDIR"),
        (Errno::EINVAL, "EINVAL"),
        (Errno::ENFILE, "ENFILE"),
        (Errno::EMFILE, "EMFILE"),
        (Errno::ENOSPC, "ENOSPC"),
        (Errno::EROFS, "EROFS"),
        (Errno::EMLINK, "EMLINK"),
        (Errno::EDOM, "EDOM"),
        (Errno::ERANGE, "ERANGE"),
        (Errno::EDEADLK, "EDEADLK"),
        (Errno::ENAMETOOLONG, "ENAMETOOLONG"),
        (Errno::ENOLCK, "ENOLCK"),
        (Errno::ENOSYS, "ENOSYS"),
        (Errno::ENOTEMPTY, "ENOTEMPTY"),
        (Errno::EBADRQC, "EBADRQC"),
        (Errno::EBADSLT, "EBADSLT"),
        (Errno::ENODATA, "ENODATA"),
        (Errno::ETIME, "ETIME"),
        (Errno::EBADMSG, "EBADMSG"),
        (Errno::EOVERFLOW, "EOVERFLOW"),
        (Errno::EILSEQ, "EILSEQ"),
        (Errno::ERESTART, "ERESTART"),
        (Errno::EUSERS, "EUSERS"),
        (Errno::ENOTSOCK, "ENOTSOCK"),
        (Errno::EOPNOTSUPP, "EOPNOTSUPP"),
        (Errno::EADDRINUSE, "EADDRINUSE"),
        (Errno::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (Errno::ENOBUFS, "ENOBUFS"),
        (Errno::EISCONN, "EISCONN"),
        (Errno::ENOTCONN, "ENOTCONN"),
        (Errno::ESHUTDOWN, "ESHUTDOWN"),
        (Errno::ETOOMANYREFS, "ETOOMANYREFS"),
        (Errno::ETIMEDOUT, "ETIMEDOUT"),
        (Errno::ECONNREFUSED, "ECONNREFUSED"),
    ];

    /// The symbolic name, for logs ("ENOMEM"), or `None` when unknown.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|&&(e, _)| e == self)
            .map(|&(_, n)| n)
    }

    /// Maps an errno name as xenstored sends it in an XS_ERROR reply
    /// ("ENOENT") back to the number; `None` for a name not in the table.
    pub fn from_name(name: &str) -> Option<Errno> {
        Self::NAMES
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(e, _)| e)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ret_maps_negative_to_errno() {
        assert_eq!(Errno::from_ret(0), Ok(0));
        assert_eq!(Errno::from_ret(512), Ok(512));
        assert_eq!(Errno::from_ret(-12), Err(Errno::ENOMEM));
        assert_eq!(Errno::from_ret(-38), Err(Errno::ENOSYS));
        assert_eq!(Errno::from_ret(-7), Err(Errno::E2BIG));
        assert_eq!(Errno::from_ret(i64::MIN), Err(Errno::EIO));
        assert_eq!(Errno::from_ret(-4096), Err(Errno::EIO));
    }

    /// `xen/include/public/errno.h`: (constant, number, name), every
    /// entry, including the two Xen marks internal (EINTR, ERESTART).
    /// Numbers and names are copied from the header, not from this file,
    /// so a wrong constant or a missing name fails here.
    const XEN_ERRNO_H: &[(Errno, i32, &str)] = &[
        (Errno::EPERM, 1, "EPERM"),
        (Errno::ENOENT, 2, "ENOENT"),
        (Errno::ESRCH, 3, "ESRCH"),
        (Errno::EINTR, 4, "EINTR"),
        (Errno::EIO, 5, "EIO"),
        (Errno::ENXIO, 6, "ENXIO"),
        (Errno::E2BIG, 7, "E2BIG"),
        (Errno::ENOEXEC, 8, "ENOEXEC"),
        (Errno::EBADF, 9, "EBADF"),
        (Errno::ECHILD, 10, "ECHILD"),
        (Errno::EAGAIN, 11, "EAGAIN"),
        (Errno::ENOMEM, 12, "ENOMEM"),
        (Errno::EACCES, 13, "EACCES"),
        (Errno::EFAULT, 14, "EFAULT"),
        (Errno::EBUSY, 16, "EBUSY"),
        (Errno::EEXIST, 17, "EEXIST"),
        (Errno::EXDEV, 18, "EXDEV"),
        (Errno::ENODEV, 19, "ENODEV"),
        (Errno::EINVAL, 22, "EINVAL"),
        (Errno::ENFILE, 23, "ENFILE"),
        (Errno::EMFILE, 24, "EMFILE"),
        (Errno::ENOSPC, 28, "ENOSPC"),
        (Errno::EMLINK, 31, "EMLINK"),
        (Errno::EDOM, 33, "EDOM"),
        (Errno::ERANGE, 34, "ERANGE"),
        (Errno::EDEADLK, 35, "EDEADLK"),
        (Errno::ENAMETOOLONG, 36, "ENAMETOOLONG"),
        (Errno::ENOLCK, 37, "ENOLCK"),
        (Errno::ENOSYS, 38, "ENOSYS"),
        (Errno::EBADRQC, 56, "EBADRQC"),
        (Errno::EBADSLT, 57, "EBADSLT"),
        (Errno::ENODATA, 61, "ENODATA"),
        (Errno::ETIME, 62, "ETIME"),
        (Errno::EBADMSG, 74, "EBADMSG"),
        (Errno::EOVERFLOW, 75, "EOVERFLOW"),
        (Errno::EILSEQ, 84, "EILSEQ"),
        (Errno::ERESTART, 85, "ERESTART"),
        (Errno::EUSERS, 87, "EUSERS"),
        (Errno::ENOTSOCK, 88, "ENOTSOCK"),
        (Errno::EOPNOTSUPP, 95, "EOPNOTSUPP"),
        (Errno::EADDRINUSE, 98, "EADDRINUSE"),
        (Errno::EADDRNOTAVAIL, 99, "EADDRNOTAVAIL"),
        (Errno::ENOBUFS, 105, "ENOBUFS"),
        (Errno::EISCONN, 106, "EISCONN"),
        (Errno::ENOTCONN, 107, "ENOTCONN"),
        (Errno::ESHUTDOWN, 108, "ESHUTDOWN"),
        (Errno::ETOOMANYREFS, 109, "ETOOMANYREFS"),
        (Errno::ETIMEDOUT, 110, "ETIMEDOUT"),
    ];

    /// Names xenstored sends (`xsd_errors` in public/io/xs_wire.h) that
    /// errno.h lacks, with the Linux numbers xenstored uses for them; and
    /// ECONNREFUSED, which this crate defines.
    const LINUX_ONLY: &[(Errno, i32, &str)] = &[
        (Errno::EISDIR, 21, "EISDIR"),
        (Errno::EROFS, 30, "EROFS"),
        (Errno::ENOTEMPTY, 39, "ENOTEMPTY"),
        (Errno::ECONNREFUSED, 111, "ECONNREFUSED"),
    ];

    #[test]
    fn names_match_xen_public_errno_h() {
        for &(constant, n, name) in XEN_ERRNO_H.iter().chain(LINUX_ONLY) {
            assert_eq!(constant, Errno(n), "{name}");
            assert_eq!(Errno(n).name(), Some(name), "{n}");
            assert_eq!(Errno::from_name(name), Some(Errno(n)), "{name}");
            assert_eq!(format!("{}", Errno(n)), name);
        }
        // Every other number has no name, and prints as a number.
        for n in -300..300 {
            if !XEN_ERRNO_H
                .iter()
                .chain(LINUX_ONLY)
                .any(|&(_, k, _)| k == n)
            {
                assert_eq!(Errno(n).name(), None, "{n}");
                assert_eq!(format!("{:?}", Errno(n)), format!("Errno({n})"));
            }
        }
        for bad in ["", "E", "enoent", "ENOENT\0", " ENOENT", "EWOULDBLOCK"] {
            assert_eq!(Errno::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..200 {
            let e = Errno(n);
            if let Some(name) = e.name() {
                assert_eq!(Errno::from_name(name), Some(e));
            }
        }
        assert_eq!(Errno::from_name("EWHATEVER"), None);
        assert_eq!(format!("{:?}", Errno(250)), "Errno(250)");
    }
}
