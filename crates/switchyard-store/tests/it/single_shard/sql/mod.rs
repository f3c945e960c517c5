//! A reader of just enough of PostgreSQL's SQL (and of PL/pgSQL function bodies) to find
//! every reference to a tenant table in a statement and what restricts it to one tenant.
//!
//! A reference — `FROM`/`JOIN` item, `UPDATE`, `INSERT INTO` or `DELETE FROM` target — is
//! held to one tenant when a top-level conjunct of its `WHERE` (or of an inner join's `ON`,
//! or of the `ON` of the left join that brings it in) is `alias.tenant_id = $1` (unqualified
//! where it is the block's only tenant table), or `alias.tenant_id = other.tenant_id` with
//! `other` held (in the same query block or, correlated, an enclosing one; `tenants.id`
//! counts as a tenant key). An insert names `tenant_id` among its columns and puts `$1`
//! there, or a held source's `tenant_id`. A call of a `switchyard_…` function passes `$1`
//! first. `$1` is the tenant: the store binds it first in every statement, and it is the
//! first argument of every function (their distribution argument on Citus).
//!
//! The reader fails closed: a tenant table named where it sees none of those clauses (a
//! `UNION` branch, a parenthesised join, dynamic SQL) is a finding, not a pass.

mod clauses;
mod lex;

pub use crate::common::TENANT_TABLES;
use clauses::block;
pub use lex::{Tok, lex};

/// The reference table, one row per tenant, keyed by `id`.
const TENANTS: &str = "tenants";

/// Words that end a condition, a `FROM` list or a select list at their own level.
const CLAUSE_END: [&str; 20] = [
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "group",
    "order",
    "limit",
    "having",
    "union",
    "intersect",
    "except",
    "window",
    "offset",
    "fetch",
    "for",
    "returning",
];

/// Words that cannot be a table's alias.
const NOT_ALIAS: [&str; 10] = [
    "on", "using", "set", "into", "values", "select", "default", "lateral", "outer", "do",
];

/// What the check found in one statement (or function body).
#[derive(Debug, Default)]
pub struct Findings {
    /// References to tenant tables (`FROM`/`JOIN` items and `UPDATE`, `INSERT INTO` and
    /// `DELETE FROM` targets).
    pub tenant_refs: usize,
    /// Why the statement does not stay on one tenant's shard; empty when it does.
    pub problems: Vec<String>,
}

/// Checks a statement, or a PL/pgSQL function body (its statements separated by `;`).
pub fn check(sql: &str) -> Findings {
    let mut f = Findings::default();
    let tokens = match lex(sql) {
        Ok(t) => t,
        Err(e) => {
            f.problems.push(format!("cannot read the SQL: {e}"));
            return f;
        }
    };
    for piece in tokens.split(|t| *t == Tok::Op(";".into())) {
        let start = piece.iter().position(|t| {
            matches!(t, Tok::Word(w) if ["select", "perform", "insert", "update", "delete", "with"].contains(&w.as_str()))
        });
        if let Some(start) = start {
            block(&piece[start..], &[], &Ctx::default(), &mut f);
        }
    }
    calls_and_names(&tokens, &mut f);
    f
}

/// A source of rows in a query block.
#[derive(Clone, Debug)]
struct Source {
    table: String,
    alias: String,
    kind: Kind,
    pinned: bool,
    /// A specific problem was reported for it already.
    reported: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Tenant,
    Reference,
    /// A subquery or `WITH` name: held when its tenant tables all are.
    Derived,
    Other,
}

impl Source {
    /// The column naming the source's tenant.
    fn key(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Tenant | Kind::Derived => Some("tenant_id"),
            Kind::Reference => Some("id"),
            Kind::Other => None,
        }
    }
}

/// The `WITH` names in scope, and whether each holds one tenant's rows.
#[derive(Clone, Debug, Default)]
struct Ctx {
    ctes: Vec<(String, bool)>,
}

/// A query block's sources and select list.
#[derive(Debug, Default)]
struct Block {
    sources: Vec<Source>,
    items: Vec<Vec<Tok>>,
    /// Token ranges analysed as blocks of their own already.
    skip: Vec<std::ops::Range<usize>>,
}

impl Block {
    /// Whether the block reads tenant tables, all held to `$1`.
    fn holds_one_tenant(&self) -> bool {
        self.sources.iter().any(|s| s.kind == Kind::Tenant)
            && self
                .sources
                .iter()
                .all(|s| s.kind != Kind::Tenant || s.pinned)
    }
}

/// Which of a block's sources a condition restricts.
#[derive(Clone, Copy, Debug)]
enum Applies {
    All,
    Only(usize),
    Nothing,
}

#[derive(Debug)]
struct Col {
    qual: Option<String>,
    name: String,
}

#[derive(Debug)]
enum Conj {
    Pin(Col),
    Link(Col, Col),
}

fn word(t: &[Tok], i: usize, w: &str) -> bool {
    matches!(t.get(i), Some(Tok::Word(x)) if x == w)
}

fn op(t: &[Tok], i: usize, o: &str) -> bool {
    matches!(t.get(i), Some(Tok::Op(x)) if x == o)
}

fn starts_query(t: &[Tok]) -> bool {
    matches!(t.first(), Some(Tok::Word(w)) if ["select", "with", "insert", "update", "delete", "values"].contains(&w.as_str()))
}

/// The first index from `from` of a word in `words` at this level, else the end.
fn find_words(t: &[Tok], from: usize, words: &[&str]) -> usize {
    (from..t.len())
        .find(|&i| matches!(&t[i], Tok::Word(w) if words.contains(&w.as_str())))
        .unwrap_or(t.len())
}

fn split_commas(t: &[Tok]) -> Vec<Vec<Tok>> {
    t.split(|x| *x == Tok::Op(",".into()))
        .map(<[Tok]>::to_vec)
        .collect()
}

/// `x` without a trailing `::type`.
fn uncast(t: &[Tok]) -> &[Tok] {
    match t {
        [rest @ .., Tok::Op(o), Tok::Word(_)] if o == "::" => rest,
        _ => t,
    }
}

fn is_tenant_param(t: &[Tok]) -> bool {
    uncast(t) == [Tok::Param(1)]
}

fn column(t: &[Tok]) -> Option<Col> {
    match uncast(t) {
        [Tok::Word(name)] => Some(Col {
            qual: None,
            name: name.clone(),
        }),
        [Tok::Word(q), Tok::Op(dot), Tok::Word(name)] if dot == "." => Some(Col {
            qual: Some(q.clone()),
            name: name.clone(),
        }),
        _ => None,
    }
}

/// The top-level conjuncts of a condition that pin a column to `$1` or equate two
/// columns; none where `OR`, `CASE` or `BETWEEN` make `AND` not split it.
fn conjuncts(t: &[Tok]) -> Vec<Conj> {
    if t.iter()
        .any(|x| matches!(x, Tok::Word(w) if ["or", "case", "between"].contains(&w.as_str())))
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    for piece in t.split(|x| *x == Tok::Word("and".into())) {
        match piece {
            [Tok::Group(inner)] if !starts_query(inner) => out.extend(conjuncts(inner)),
            _ => {
                let eq: Vec<usize> = (0..piece.len()).filter(|&i| op(piece, i, "=")).collect();
                if let [i] = eq[..] {
                    let (l, r) = (&piece[..i], &piece[i + 1..]);
                    match (column(l), column(r)) {
                        (Some(a), Some(b)) => out.push(Conj::Link(a, b)),
                        (Some(a), None) if is_tenant_param(r) => out.push(Conj::Pin(a)),
                        (None, Some(b)) if is_tenant_param(l) => out.push(Conj::Pin(b)),
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

/// The end of a condition starting at `from`.
fn cond_end(t: &[Tok], from: usize) -> usize {
    let end = find_words(t, from, &CLAUSE_END);
    let on = find_words(t, from, &["on"]);
    let comma = (from..t.len()).find(|&i| op(t, i, ",")).unwrap_or(t.len());
    end.min(on).min(comma)
}

fn kind_of(table: &str, ctx: &Ctx) -> (Kind, bool) {
    if let Some((_, held)) = ctx.ctes.iter().rev().find(|(n, _)| n == table) {
        (Kind::Derived, *held)
    } else if TENANT_TABLES.contains(&table) {
        (Kind::Tenant, false)
    } else if table == TENANTS {
        (Kind::Reference, false)
    } else {
        (Kind::Other, false)
    }
}

/// A table name (the last part of a qualified one) at `p`, and the index after it.
fn table_name(t: &[Tok], mut p: usize) -> Option<(String, usize)> {
    let Some(Tok::Word(first)) = t.get(p) else {
        return None;
    };
    let mut name = first.clone();
    p += 1;
    while op(t, p, ".") {
        let Some(Tok::Word(n)) = t.get(p + 1) else {
            break;
        };
        name = n.clone();
        p += 2;
    }
    Some((name, p))
}

/// An optional `[AS] alias` at `p`.
fn alias(t: &[Tok], mut p: usize, default: &str) -> (String, usize) {
    if word(t, p, "as") {
        p += 1;
    }
    match t.get(p) {
        Some(Tok::Word(w))
            if !CLAUSE_END.contains(&w.as_str()) && !NOT_ALIAS.contains(&w.as_str()) =>
        {
            (w.clone(), p + 1)
        }
        _ => (default.to_string(), p),
    }
}

fn push(b: &mut Block, f: &mut Findings, source: Source) {
    if source.kind == Kind::Tenant {
        f.tenant_refs += 1;
    }
    b.sources.push(source);
}

struct Cond {
    applies: Applies,
    conjuncts: Vec<Conj>,
}

/// The source a column names: in `own` only, or (`outer`) in the enclosing blocks too.
fn resolve<'a>(
    col: &Col,
    own: &'a [Source],
    chain: &[&'a [Source]],
    outer: bool,
) -> Option<(bool, usize, &'a Source)> {
    match &col.qual {
        Some(q) => {
            if let Some(i) = own.iter().position(|s| &s.alias == q) {
                return Some((true, i, &own[i]));
            }
            if outer {
                for level in chain.iter().rev() {
                    if let Some(s) = level.iter().find(|s| &s.alias == q) {
                        return Some((false, 0, s));
                    }
                }
            }
            None
        }
        None => {
            let candidates: Vec<usize> = (0..own.len())
                .filter(|&i| match own[i].kind {
                    Kind::Tenant => col.name == "tenant_id",
                    Kind::Reference => col.name == "id" && own.len() == 1,
                    _ => false,
                })
                .collect();
            match candidates[..] {
                [i] => Some((true, i, &own[i])),
                _ => None,
            }
        }
    }
}

/// Marks the sources the conditions hold to `$1`, directly or through tenant_id equalities.
fn pin(sources: &mut [Source], conds: &[Cond], chain: &[&[Source]]) {
    loop {
        let mut found = None;
        'search: for cond in conds {
            let applies = |i: usize| match cond.applies {
                Applies::All => true,
                Applies::Only(j) => i == j,
                Applies::Nothing => false,
            };
            for conj in &cond.conjuncts {
                let sides: Vec<(&Col, Option<&Col>)> = match conj {
                    Conj::Pin(c) => vec![(c, None)],
                    Conj::Link(a, b) => vec![(a, Some(b)), (b, Some(a))],
                };
                for (this, other) in sides {
                    let Some((true, i, s)) = resolve(this, sources, chain, false) else {
                        continue;
                    };
                    if s.pinned || !applies(i) || s.key() != Some(this.name.as_str()) {
                        continue;
                    }
                    let held = match other {
                        None => true,
                        Some(o) => resolve(o, sources, chain, true)
                            .is_some_and(|(_, _, t)| t.pinned && t.key() == Some(o.name.as_str())),
                    };
                    if held {
                        found = Some(i);
                        break 'search;
                    }
                }
            }
        }
        match found {
            Some(i) => sources[i].pinned = true,
            None => return,
        }
    }
}

/// Checks every `switchyard_…` call passes `$1` first, and that every tenant table named
/// is one of the references read.
fn calls_and_names(tokens: &[Tok], f: &mut Findings) {
    fn walk(t: &[Tok], f: &mut Findings, names: &mut usize) {
        for (i, tok) in t.iter().enumerate() {
            match tok {
                Tok::Word(w) if w == "execute" => f
                    .problems
                    .push("dynamic SQL (EXECUTE), which this reader cannot see".into()),
                Tok::Word(w) if TENANT_TABLES.contains(&w.as_str()) && !op(t, i + 1, ".") => {
                    *names += 1
                }
                Tok::Word(w)
                    if w.starts_with("switchyard_") && !word(t, i.wrapping_sub(1), "into") =>
                {
                    if let Some(Tok::Group(args)) = t.get(i + 1)
                        && !split_commas(args)
                            .first()
                            .is_some_and(|a| is_tenant_param(a))
                    {
                        f.problems.push(format!(
                            "calls {w} with something other than $1 (the tenant) first"
                        ));
                    }
                }
                Tok::Group(inner) => walk(inner, f, names),
                _ => {}
            }
        }
    }
    let mut names = 0;
    walk(tokens, f, &mut names);
    if names != f.tenant_refs {
        f.problems.push(format!(
            "names tenant tables {names} times where this reader sees {} references (FROM, JOIN, \
             UPDATE, INSERT INTO, DELETE FROM): it cannot vouch for the statement",
            f.tenant_refs
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use switchyard_store::statements as s;

    fn holds(sql: &str) {
        let f = check(sql);
        assert!(f.problems.is_empty(), "{sql}\n{:?}", f.problems);
        assert!(f.tenant_refs > 0, "{sql}");
    }

    fn fails(sql: &str) {
        assert!(!check(sql).problems.is_empty(), "passed: {sql}");
    }

    #[test]
    fn statements_held_to_one_tenant_pass() {
        holds(s::CHAT_CONTEXT);
        holds(s::WRITE_TURN);
        holds(s::RECENT_DECISIONS);
        holds(s::ANALYTICS_BY_AGENT);
        holds(s::ROUTABLE_AGENTS);
        holds(
            "UPDATE conversations SET message_count = (SELECT count(*) FROM conversation_messages m \
             WHERE m.tenant_id = conversations.tenant_id AND m.conversation_id = conversations.id) \
             WHERE tenant_id = $1",
        );
        holds("INSERT INTO agents (tenant_id, id) VALUES ($1, $2) RETURNING id");
        holds(
            "INSERT INTO agents (tenant_id, id) SELECT a.tenant_id, $2 FROM agents a \
             JOIN users u ON u.tenant_id = a.tenant_id WHERE a.tenant_id = $1 \
             ON CONFLICT (tenant_id, id) DO NOTHING",
        );
        holds(
            "SELECT * FROM users u JOIN api_keys k ON k.tenant_id = u.tenant_id WHERE u.tenant_id = $1::uuid",
        );
    }

    #[test]
    fn statements_that_span_tenants_fail() {
        // No tenant at all, another parameter, an OR, a SET that is no filter.
        fails("SELECT id FROM conversations WHERE id = $2");
        fails("SELECT count(*) FROM users WHERE tenant_id = $2");
        fails("SELECT id FROM conversations WHERE tenant_id = $1 AND id = $2 OR id = $3");
        fails("UPDATE users SET tenant_id = $1 WHERE id = $2");
        fails("DELETE FROM agent_call_errors WHERE created_at < $1");
        // A join not on tenant_id; a left join whose ON names the preserved side only.
        fails(
            "SELECT m.id FROM conversation_messages m JOIN conversations c \
             ON c.id = m.conversation_id WHERE m.tenant_id = $1",
        );
        fails(
            "SELECT c.id FROM conversations c LEFT JOIN conversation_messages m \
             ON c.tenant_id = $1 AND m.tenant_id = c.tenant_id",
        );
        fails("SELECT * FROM users, agents WHERE users.tenant_id = $1");
        // A subquery, a WITH body, a UNION branch, a parenthesised join.
        fails("SELECT (SELECT count(*) FROM users) FROM tenants WHERE id = $1");
        fails("WITH x AS (SELECT * FROM agents) SELECT * FROM x");
        fails("SELECT 1 FROM users WHERE tenant_id = $1 UNION SELECT 1 FROM agents");
        fails(
            "SELECT 1 FROM (users u JOIN agents a ON a.tenant_id = u.tenant_id) WHERE u.tenant_id = $1",
        );
        // Inserts: no tenant_id, or not $1 in it.
        fails("INSERT INTO agents (id, name) VALUES ($1, $2)");
        fails("INSERT INTO agents (tenant_id, id) VALUES ($2, $1)");
        fails("INSERT INTO agents (tenant_id, id) SELECT tenant_id, id FROM agents");
        // A function called with another tenant key; dynamic SQL.
        fails("SELECT * FROM switchyard_write_turn($2, $1)");
        fails("BEGIN EXECUTE 'SELECT 1 FROM users'; END");
    }
}
