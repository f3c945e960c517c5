//! Keyset pagination: a page size and an opaque cursor naming the last row seen.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest page size; larger requests are clamped to it.
pub const MAX_LIMIT: u32 = 100;

/// The position after which the next page starts: the sort key of the last row returned.
/// Lists sorted by time carry the timestamp and the id (ids break ties); lists sorted by
/// id alone carry only the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's sort timestamp, for lists sorted by time.
    pub at: Option<DateTime<Utc>>,
    /// The last row's id.
    pub id: Uuid,
}

/// A cursor that is not one this service made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the cursor is malformed")]
pub struct BadCursor;

impl Cursor {
    /// A cursor for a list sorted by id.
    pub fn after_id(id: impl Into<Uuid>) -> Self {
        Self {
            at: None,
            id: id.into(),
        }
    }

    /// A cursor for a list sorted by a timestamp, then id.
    pub fn after(at: DateTime<Utc>, id: impl Into<Uuid>) -> Self {
        Self {
            at: Some(at),
            id: id.into(),
        }
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let text = match self.at {
            Some(at) => format!("{}.{}", at.timestamp_micros(), self.id.simple()),
            None => format!("-.{}", self.id.simple()),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Parses a cursor given back by a client: what [`Cursor::encode`] made, with a time
    /// from year 1 to year 9999.
    pub fn decode(s: &str) -> Result<Self, BadCursor> {
        if s.len() > 128 {
            return Err(BadCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| BadCursor)?;
        let (at, id) = text.split_once('.').ok_or(BadCursor)?;
        let id = Uuid::try_parse(id).map_err(|_| BadCursor)?;
        let at = match at {
            "-" => None,
            micros => {
                let micros: i64 = micros.parse().map_err(|_| BadCursor)?;
                // Only the times a stored row can have: both databases refuse some that
                // chrono can hold (PostgreSQL's range starts in 4713 BC).
                if !(MIN_CURSOR_MICROS..=MAX_CURSOR_MICROS).contains(&micros) {
                    return Err(BadCursor);
                }
                Some(DateTime::from_timestamp_micros(micros).ok_or(BadCursor)?)
            }
        };
        Ok(Self { at, id })
    }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
const MIN_CURSOR_MICROS: i64 = -62_135_596_800_000_000;
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

/// Which page of a list to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// How many rows at most (1 to [`MAX_LIMIT`]).
    pub limit: u32,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` rows, the limit clamped to 1..=[`MAX_LIMIT`].
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIMIT),
            after: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: u32, cursor: Cursor) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIMIT),
            after: Some(cursor),
        }
    }

    /// The number of rows to fetch: one more than the limit, to know if a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(DEFAULT_LIMIT)
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Where the next page starts, or none on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with [`PageRequest::fetch_limit`]) to the page and computes the
    /// next cursor from the last row kept.
    pub fn from_rows(
        mut rows: Vec<T>,
        page: &PageRequest,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> Self {
        let limit = page.limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Self { items: rows, next }
    }

    /// The same page with each row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        for c in [Cursor::after_id(id), Cursor::after(at, id)] {
            assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in [
            "",
            "!!!",
            "bm9wZQ",
            &"A".repeat(500),
            &URL_SAFE_NO_PAD.encode("12.notauuid"),
            // Times no database row can have (PostgreSQL's timestamps start in 4713 BC).
            &URL_SAFE_NO_PAD.encode(format!("-200000000000000000.{}", Uuid::nil())),
            &URL_SAFE_NO_PAD.encode(format!("253402300800000000.{}", Uuid::nil())),
        ] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad:?}");
        }
        for edge in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let at: DateTime<Utc> = edge.parse().unwrap();
            let cursor = Cursor::after(at, Uuid::nil());
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor), "{edge}");
        }
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(PageRequest::first(0).limit, 1);
        assert_eq!(PageRequest::first(1000).limit, MAX_LIMIT);
    }

    #[test]
    fn a_page_knows_whether_more_follow() {
        let page = PageRequest::first(2);
        let full = Page::from_rows(vec![1u128, 2, 3], &page, |n| {
            Cursor::after_id(Uuid::from_u128(*n))
        });
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next, Some(Cursor::after_id(Uuid::from_u128(2))));
        let last = Page::from_rows(vec![1u128, 2], &page, |n| {
            Cursor::after_id(Uuid::from_u128(*n))
        });
        assert_eq!(last.next, None);
    }
}
