//! Placeholders for statements built with a variable number of values.

use super::Backend;

/// Numbered placeholders for a statement: `$1, $2, …` on PostgreSQL, `?`
/// on SQLite (whose numbered ones cost a search per value bound, which
/// many-row statements multiply). Values are bound in the order the
/// placeholders were handed out.
pub(crate) struct Params {
    backend: Backend,
    next: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Params {
        Params { backend, next: 0 }
    }

    /// The next placeholder.
    pub(crate) fn one(&mut self) -> String {
        self.next += 1;
        match self.backend {
            Backend::Postgres => format!("${}", self.next),
            Backend::Sqlite => "?".to_string(),
        }
    }

    /// `(p, p, …)`: a row of `n`, with `fixed` spliced in (`(index, SQL)`).
    pub(crate) fn row(&mut self, n: usize, fixed: &[(usize, &str)]) -> String {
        let mut out = Vec::with_capacity(n + fixed.len());
        for i in 0..n + fixed.len() {
            match fixed.iter().find(|(at, _)| *at == i) {
                Some((_, sql)) => out.push((*sql).to_string()),
                None => out.push(self.one()),
            }
        }
        format!("({})", out.join(", "))
    }
}
