//! Cursor pagination shared by every list: `?limit=` (default 50, max 500) and `?cursor=`, and
//! the `{items, total, next_cursor}` page. Cursors are the last item's id: ids are time-ordered
//! (UUID v7), so "after this id" is a stable keyset position under concurrent inserts.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::{FieldError, Problem};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// Raw paging parameters as they arrive.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Validated paging: fetch `limit + 1` rows after `after` to learn whether a next page exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<Uuid>,
}

impl PageParams {
    pub fn parse(&self) -> Result<PageRequest, Problem> {
        let mut errores = Vec::new();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errores.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => match Uuid::parse_str(cursor) {
                Ok(id) => Some(id),
                Err(_) => {
                    errores.push(FieldError::new("cursor", "is not a cursor this API issued"));
                    None
                }
            },
        };
        if errores.is_empty() {
            Ok(PageRequest { limit, after })
        } else {
            Err(Problem::invalid(errores))
        }
    }

    /// Parses the paging of a list whose other query fields gave `errores`: every bad field,
    /// paging or not, is reported in one 400.
    pub fn parse_along(&self, mut errores: Vec<FieldError>) -> Result<PageRequest, Problem> {
        match self.parse() {
            Ok(page) if errores.is_empty() => Ok(page),
            Ok(_) => Err(Problem::invalid(errores)),
            Err(problem) => {
                errores.extend(problem.errores);
                Err(Problem::invalid(errores))
            }
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows; `id` gives each row's cursor.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: PageRequest,
        total: i64,
        id: impl Fn(&T) -> Uuid,
    ) -> Self {
        let has_more = rows.len() as i64 > request.limit;
        rows.truncate(request.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|row| id(row).to_string())
        } else {
            None
        };
        Self {
            items: rows,
            total,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_is_fifty_and_limits_out_of_range_are_refused() {
        assert_eq!(PageParams::default().parse().unwrap().limit, 50);
        for bad in [0, 501, -1] {
            let params = PageParams {
                limit: Some(bad),
                cursor: None,
            };
            assert_eq!(params.parse().unwrap_err().codigo, "DATOS_INVALIDOS");
        }
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let params = PageParams {
            limit: None,
            cursor: Some("abc".into()),
        };
        assert_eq!(params.parse().unwrap_err().errores[0].campo, "cursor");
    }

    #[test]
    fn a_full_page_carries_the_cursor_of_its_last_item() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let request = PageRequest {
            limit: 2,
            after: None,
        };
        let page = Page::from_rows(ids.clone(), request, 3, |id| *id);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(ids[1].to_string()));
        let last = Page::from_rows(ids[2..].to_vec(), request, 3, |id| *id);
        assert_eq!(last.next_cursor, None);
    }
}
