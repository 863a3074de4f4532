//! Range scans: a page of rows per round trip, never a whole table in memory.

use std::collections::VecDeque;
use std::ops::Bound;

use super::txn::{JoinedRow, Txn};
use super::{FIRST_PAGE, PAGE};
use crate::error::Result;

/// Rows of one table between two bounds, fetched a page at a time from whichever end is
/// asked for. `lo..hi` is always the part not yet fetched; rows fetched from one end and not
/// yet taken wait in `front` (ascending) or `back` (descending), and an end whose gap is
/// empty takes from the other end's waiting rows.
pub(crate) struct PgRange<'a> {
    txn: &'a Txn,
    tbl: i16,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front: VecDeque<(Vec<u8>, Vec<u8>)>,
    back: VecDeque<(Vec<u8>, Vec<u8>)>,
    gap_empty: bool,
    page: usize,
}

impl<'a> PgRange<'a> {
    pub(in crate::meta::kv) fn new(txn: &'a Txn, tbl: i16, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Self {
        PgRange { txn, tbl, lo, hi, front: VecDeque::new(), back: VecDeque::new(), gap_empty: false, page: FIRST_PAGE }
    }

    fn fill(&mut self, rev: bool) -> Result<()> {
        // The first page forwards may have been fetched ahead (`Txn::fetch`).
        let ahead = if rev || self.page != FIRST_PAGE {
            None
        } else {
            self.txn.first_page(&(self.tbl, self.lo.clone(), self.hi.clone()))
        };
        let rows = match ahead {
            Some(rows) => Ok(rows),
            None => self.txn.page(self.tbl, &self.lo, &self.hi, rev, self.page),
        };
        let rows = rows.inspect_err(|_| self.gap_empty = true)?;
        if rows.len() < self.page {
            self.gap_empty = true;
        }
        self.page = PAGE;
        if let Some((k, _)) = rows.last() {
            if rev {
                self.hi = Bound::Excluded(k.clone());
            } else {
                self.lo = Bound::Excluded(k.clone());
            }
        }
        if rev {
            self.back.extend(rows)
        } else {
            self.front.extend(rows)
        }
        Ok(())
    }

    pub(in crate::meta::kv) fn next_row(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.front.is_empty()
            && !self.gap_empty
            && let Err(e) = self.fill(false)
        {
            return Some(Err(e));
        }
        self.front.pop_front().or_else(|| self.back.pop_back()).map(Ok)
    }

    pub(in crate::meta::kv) fn next_row_back(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.back.is_empty()
            && !self.gap_empty
            && let Err(e) = self.fill(true)
        {
            return Some(Err(e));
        }
        self.back.pop_front().or_else(|| self.front.pop_back()).map(Ok)
    }
}

/// A folder's children from a sort key on, each with its item, a page per round trip.
pub(crate) struct PgChildren<'a> {
    txn: &'a Txn,
    ctbl: i16,
    itbl: i16,
    lo: Bound<Vec<u8>>,
    hi: Vec<u8>,
    rows: VecDeque<JoinedRow>,
    done: bool,
    page: usize,
}

impl<'a> PgChildren<'a> {
    pub(in crate::meta::kv) fn new(txn: &'a Txn, ctbl: i16, itbl: i16, lo: Vec<u8>, hi: Vec<u8>) -> Self {
        PgChildren {
            txn,
            ctbl,
            itbl,
            lo: Bound::Included(lo),
            hi,
            rows: VecDeque::new(),
            done: false,
            page: FIRST_PAGE,
        }
    }
}

impl Iterator for PgChildren<'_> {
    type Item = Result<JoinedRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rows.is_empty() && !self.done {
            match self.txn.children_page(self.ctbl, self.itbl, &self.lo, self.hi.clone(), self.page) {
                Ok(rows) => {
                    self.done = rows.len() < self.page;
                    self.page = PAGE;
                    if let Some((k, _, _)) = rows.last() {
                        self.lo = Bound::Excluded(k.clone());
                    }
                    self.rows.extend(rows);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.rows.pop_front().map(Ok)
    }
}
