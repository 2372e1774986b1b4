//! `rate=`: credit-based limiting of what a guest transmits.
//!
//! xl turns `rate=10MB/s@20ms` into a credit of bytes replenished once per
//! interval and libxl writes it to the backend node `rate` as
//! `"<bytes>,<microseconds>"`. The backend spends credit on each packet it
//! takes from the TX ring; a packet larger than the credit left waits (its
//! requests stay on the ring) until enough intervals have passed. As in
//! Xen's netback, unused credit accumulates only up to a burst limit, the
//! larger of one interval's credit and 128 KiB, so that the largest packet
//! (64 KiB) always gets through eventually whatever the rate.
//!
//! Time is passed in by the caller ([`Instant`]s), so tests drive the
//! clock.

use std::time::{Duration, Instant};

/// Credit that may accumulate at least (so any packet fits).
pub const MIN_BURST: u64 = 128 * 1024;

/// Why a `rate` node does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate `{0}': expected `<bytes>,<microseconds>' with both nonzero")]
pub struct RateError(pub String);

/// Credit per interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Bytes granted each interval.
    pub bytes: u64,
    /// The interval.
    pub interval: Duration,
}

impl Rate {
    /// Parse the backend node's `"<bytes>,<usecs>"`.
    pub fn from_node(s: &str) -> Result<Rate, RateError> {
        let err = || RateError(s.to_owned());
        let (b, us) = s.trim().split_once(',').ok_or_else(err)?;
        let bytes: u64 = b.parse().map_err(|_| err())?;
        let us: u64 = us.parse().map_err(|_| err())?;
        if bytes == 0 || us == 0 {
            return Err(err());
        }
        Ok(Rate {
            bytes,
            interval: Duration::from_micros(us),
        })
    }
}

/// A token bucket refilled in whole intervals.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate: Rate,
    burst: u64,
    credit: u64,
    window_start: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            burst: rate.bytes.max(MIN_BURST),
            credit: rate.bytes,
            window_start: now,
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Credit left (after the refills due at the last call).
    pub fn credit(&self) -> u64 {
        self.credit
    }

    /// Spend `size` bytes of credit at `now`: `Ok` if there is enough
    /// (after adding the credit of the intervals that have passed), else
    /// `Err(when)`, the instant at which to try again; nothing is spent.
    pub fn consume(&mut self, size: u64, now: Instant) -> Result<(), Instant> {
        if size > self.credit {
            self.refill(now);
        }
        if size <= self.credit {
            self.credit -= size;
            return Ok(());
        }
        // Intervals needed for the missing credit, from the current window.
        let missing = (size.min(self.burst) - self.credit).div_ceil(self.rate.bytes);
        let wait = self
            .rate
            .interval
            .checked_mul(u32::try_from(missing).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX);
        Err(self
            .window_start
            .checked_add(wait)
            .unwrap_or(now + self.rate.interval))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        let periods = elapsed.as_nanos() / self.rate.interval.as_nanos().max(1);
        if periods == 0 {
            return;
        }
        let add = u64::try_from(periods)
            .unwrap_or(u64::MAX)
            .saturating_mul(self.rate.bytes);
        self.credit = self.credit.saturating_add(add).min(self.burst);
        // Whole intervals only: the remainder counts towards the next one.
        let periods = u32::try_from(periods).unwrap_or(u32::MAX);
        self.window_start = self
            .rate
            .interval
            .checked_mul(periods)
            .and_then(|d| self.window_start.checked_add(d))
            .filter(|&t| t <= now)
            .unwrap_or(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_libxl_node() {
        assert_eq!(
            Rate::from_node("20000,20000").unwrap(),
            Rate {
                bytes: 20000,
                interval: ms(20)
            }
        );
        for bad in ["", "1", "0,50000", "100,0", "x,1", "1,2,3", "-1,5"] {
            assert!(Rate::from_node(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spends_then_waits_for_the_next_interval() {
        // 1MB/s@20ms: 20,000 bytes every 20 ms.
        let t0 = Instant::now();
        let mut l = RateLimiter::new(Rate::from_node("20000,20000").unwrap(), t0);
        for _ in 0..13 {
            l.consume(1514, t0).unwrap();
        }
        assert_eq!(l.credit(), 20000 - 13 * 1514);
        // The 14th does not fit: come back when the window ends.
        assert_eq!(l.consume(1514, t0 + ms(5)), Err(t0 + ms(20)));
        assert_eq!(l.credit(), 20000 - 13 * 1514, "nothing spent on refusal");
        assert_eq!(l.consume(1514, t0 + ms(19)), Err(t0 + ms(20)));
        l.consume(1514, t0 + ms(20)).unwrap();
        assert_eq!(l.credit(), 2 * 20000 - 14 * 1514);
    }

    #[test]
    fn throughput_over_a_simulated_second_matches_the_rate() {
        // 10Mb/s = 1,250,000 B/s, default 50 ms interval: 62,500 B each.
        let t0 = Instant::now();
        let mut l = RateLimiter::new(
            Rate {
                bytes: 62_500,
                interval: ms(50),
            },
            t0,
        );
        let mut now = t0;
        let mut sent = 0u64;
        let end = t0 + Duration::from_secs(10);
        // Each packet goes as soon as it may.
        for _ in 0..1_000_000 {
            match l.consume(1514, now) {
                Ok(()) => sent += 1514,
                Err(at) => {
                    assert!(at > now, "the retry time is in the future");
                    now = at;
                }
            }
            if now >= end {
                break;
            }
        }
        // The initial bucket and the refills at 50 ms .. 9.95 s (the loop
        // stops on reaching 10 s): 10 s at 1.25 MB/s, within one packet.
        let want = 62_500 * 200;
        assert!(
            sent <= want && sent + 1514 > want,
            "sent {sent}, want ~{want}"
        );
    }

    #[test]
    fn idle_time_accumulates_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(
            Rate {
                bytes: 1000,
                interval: ms(10),
            },
            t0,
        );
        l.consume(1000, t0).unwrap();
        // An hour idle gives MIN_BURST, not 360,000 intervals' worth.
        let later = t0 + Duration::from_secs(3600);
        l.consume(MIN_BURST, later).unwrap();
        assert_eq!(l.consume(1, later), Err(later + ms(10)));
    }

    #[test]
    fn a_packet_larger_than_one_interval_gets_through() {
        // 1000 B per 10 ms; a 64 KiB GSO packet needs 66 intervals.
        let t0 = Instant::now();
        let mut l = RateLimiter::new(
            Rate {
                bytes: 1000,
                interval: ms(10),
            },
            t0,
        );
        let at = l.consume(65_535, t0).unwrap_err();
        assert_eq!(at, t0 + ms(650));
        assert!(l.consume(65_535, at - ms(1)).is_err());
        l.consume(65_535, at).unwrap();
    }
}
