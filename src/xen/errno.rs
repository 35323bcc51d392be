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
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ENODATA: Errno = Errno(61);
    pub const ETIME: Errno = Errno(62);
    pub const EBADMSG: Errno = Errno(74);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EILSEQ: Errno = Errno(84);
    pub const ERESTART: Errno = Errno(85);
    pub const ENOTSOCK: Errno = Errno(88);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const EADDRINUSE: Errno = Errno(98);
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    pub const ENOBUFS: Errno = Errno(105);
    pub const EISCONN: Errno = Errno(106);
    pub const ENOTCONN: Errno = Errno(107);
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

    /// The symbolic name, for logs ("ENOMEM"), or `None` when unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ESRCH => "ESRCH",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::ENXIO => "ENXIO",
            Errno::E2BIG => "E2BIG",
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EISDIR => "EISDIR",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::EROFS => "EROFS",
            Errno::ERANGE => "ERANGE",
            Errno::ENOSYS => "ENOSYS",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENODATA => "ENODATA",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::EISCONN => "EISCONN",
            Errno::ENOTCONN => "ENOTCONN",
            _ => return None,
        })
    }

    /// Maps an errno name as xenstored sends it in an XS_ERROR reply
    /// ("ENOENT") back to the number.
    pub fn from_name(name: &str) -> Option<Errno> {
        const ALL: &[Errno] = &[
            Errno::EPERM,
            Errno::ENOENT,
            Errno::ESRCH,
            Errno::EINTR,
            Errno::EIO,
            Errno::ENXIO,
            Errno::E2BIG,
            Errno::EBADF,
            Errno::EAGAIN,
            Errno::ENOMEM,
            Errno::EACCES,
            Errno::EFAULT,
            Errno::EBUSY,
            Errno::EEXIST,
            Errno::ENODEV,
            Errno::EISDIR,
            Errno::EINVAL,
            Errno::ENOSPC,
            Errno::EROFS,
            Errno::ERANGE,
            Errno::ENOSYS,
            Errno::ENOTEMPTY,
            Errno::ENODATA,
            Errno::EOVERFLOW,
            Errno::EOPNOTSUPP,
            Errno::ETIMEDOUT,
            Errno::EISCONN,
            Errno::ENOTCONN,
        ];
        ALL.iter().copied().find(|e| e.name() == Some(name))
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
