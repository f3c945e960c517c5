//! The clauses of a query block: `WITH`, `SELECT … FROM … JOIN … ON … WHERE`, `UPDATE`,
//! `DELETE` and `INSERT`, read into the block's sources and conditions.

use super::*;
/// Analyses one query block (and, recursively, the blocks inside it).
pub(super) fn block(t: &[Tok], chain: &[&[Source]], ctx: &Ctx, f: &mut Findings) -> Block {
    let mut ctx = ctx.clone();
    let mut b = Block::default();
    let mut p = 0;
    if word(t, 0, "with") {
        p = 1 + usize::from(word(t, 1, "recursive"));
        loop {
            let Some(Tok::Word(name)) = t.get(p) else {
                f.problems
                    .push("a WITH clause this reader does not follow".into());
                return b;
            };
            let name = name.clone();
            p += 1;
            if matches!(t.get(p), Some(Tok::Group(_))) {
                p += 1;
            }
            p += usize::from(word(t, p, "as"));
            p += usize::from(word(t, p, "not"));
            p += usize::from(word(t, p, "materialized"));
            let Some(Tok::Group(body)) = t.get(p) else {
                f.problems
                    .push("a WITH clause this reader does not follow".into());
                return b;
            };
            let held = block(body, chain, &ctx, f).holds_one_tenant();
            b.skip.push(p..p + 1);
            ctx.ctes.push((name, held));
            p += 1;
            if op(t, p, ",") {
                p += 1;
            } else {
                break;
            }
        }
    }
    let mut conds = Vec::new();
    match t.get(p) {
        Some(Tok::Word(w)) if w == "select" || w == "perform" => {
            select(t, p, chain, &ctx, f, &mut b, &mut conds)
        }
        Some(Tok::Word(w)) if w == "update" => update(t, p, chain, &ctx, f, &mut b, &mut conds),
        Some(Tok::Word(w)) if w == "delete" => delete(t, p, chain, &ctx, f, &mut b, &mut conds),
        Some(Tok::Word(w)) if w == "insert" => insert(t, p, chain, &ctx, f, &mut b),
        _ => {}
    }
    pin(&mut b.sources, &conds, chain);
    for s in &b.sources {
        if s.kind == Kind::Tenant && !s.pinned && !s.reported {
            f.problems.push(format!(
                "`{}`{} is not held to one tenant: no `{}tenant_id = $1`, nor a tenant_id \
                 equality with a table that is",
                s.table,
                if s.alias == s.table {
                    String::new()
                } else {
                    format!(" (as `{}`)", s.alias)
                },
                if s.alias == s.table {
                    String::new()
                } else {
                    format!("{}.", s.alias)
                },
            ));
        }
    }
    let mut inner: Vec<&[Source]> = chain.to_vec();
    inner.push(&b.sources);
    for (i, tok) in t.iter().enumerate() {
        if !b.skip.iter().any(|r| r.contains(&i)) {
            nested(tok, &inner, &ctx, f);
        }
    }
    b
}

/// Analyses the query blocks inside `tok` (correlated: they see `chain`).
fn nested(tok: &Tok, chain: &[&[Source]], ctx: &Ctx, f: &mut Findings) {
    if let Tok::Group(inner) = tok {
        if starts_query(inner) {
            block(inner, chain, ctx, f);
        } else {
            for t in inner {
                nested(t, chain, ctx, f);
            }
        }
    }
}

fn select(
    t: &[Tok],
    p: usize,
    chain: &[&[Source]],
    ctx: &Ctx,
    f: &mut Findings,
    b: &mut Block,
    conds: &mut Vec<Cond>,
) {
    let mut start = p + 1;
    while word(t, start, "distinct") || word(t, start, "all") {
        start += 1;
    }
    let from = find_words(t, start, &["from"]);
    let list_end = find_words(t, start, &["into", "from"]).min(cond_end_words(t, start));
    b.items = split_commas(&t[start..list_end]);
    if from < t.len() {
        let end = from_list(t, from + 1, chain, ctx, f, b, conds);
        where_clause(t, end, conds);
    } else {
        where_clause(t, find_words(t, start, &["where"]), conds);
    }
}

fn cond_end_words(t: &[Tok], from: usize) -> usize {
    find_words(t, from, &CLAUSE_END)
}

fn where_clause(t: &[Tok], p: usize, conds: &mut Vec<Cond>) {
    if word(t, p, "where") {
        let end = cond_end(t, p + 1);
        conds.push(Cond {
            applies: Applies::All,
            conjuncts: conjuncts(&t[p + 1..end]),
        });
    }
}

#[derive(Clone, Copy)]
enum Join {
    List,
    Inner,
    Left,
    Other,
}

/// Reads a `FROM` list from `p`; answers where it ends.
fn from_list(
    t: &[Tok],
    mut p: usize,
    chain: &[&[Source]],
    ctx: &Ctx,
    f: &mut Findings,
    b: &mut Block,
    conds: &mut Vec<Cond>,
) -> usize {
    let mut join = Join::List;
    loop {
        let index = b.sources.len();
        p = from_item(t, p, chain, ctx, f, b);
        if word(t, p, "on") {
            let end = cond_end(t, p + 1);
            let applies = match join {
                Join::Inner => Applies::All,
                Join::Left => Applies::Only(index),
                Join::List | Join::Other => Applies::Nothing,
            };
            conds.push(Cond {
                applies,
                conjuncts: conjuncts(&t[p + 1..end]),
            });
            p = end;
        } else if word(t, p, "using") {
            // `USING (…)`: not read as a restriction.
            p += 2;
        }
        if op(t, p, ",") {
            join = Join::List;
            p += 1;
            continue;
        }
        let mut q = p;
        let kind = if word(t, q, "left") {
            q += 1;
            Join::Left
        } else if word(t, q, "inner") {
            q += 1;
            Join::Inner
        } else if ["right", "full", "cross", "natural"]
            .iter()
            .any(|w| word(t, q, w))
        {
            while !word(t, q, "join") && q < t.len() {
                q += 1;
            }
            Join::Other
        } else {
            Join::Inner
        };
        q += usize::from(word(t, q, "outer"));
        if !word(t, q, "join") {
            return p;
        }
        join = kind;
        p = q + 1;
    }
}

/// Reads one `FROM` item at `p`; answers the index after it.
fn from_item(
    t: &[Tok],
    mut p: usize,
    chain: &[&[Source]],
    ctx: &Ctx,
    f: &mut Findings,
    b: &mut Block,
) -> usize {
    while word(t, p, "lateral") || word(t, p, "only") {
        p += 1;
    }
    let (table, kind, pinned) = match t.get(p) {
        Some(Tok::Group(inner)) if starts_query(inner) => {
            let held = block(inner, chain, ctx, f).holds_one_tenant();
            b.skip.push(p..p + 1);
            p += 1;
            ("(subquery)".to_string(), Kind::Derived, held)
        }
        Some(Tok::Word(_)) => {
            let Some((name, next)) = table_name(t, p) else {
                return p + 1;
            };
            p = next;
            if matches!(t.get(p), Some(Tok::Group(_))) {
                // A function call; `switchyard_…` calls are checked on their own.
                p += 1;
                (name, Kind::Other, false)
            } else {
                let (kind, held) = kind_of(&name, ctx);
                (name, kind, held)
            }
        }
        _ => {
            f.problems
                .push("a FROM item this reader does not follow (a parenthesised join?)".into());
            return p + 1;
        }
    };
    let (alias, next) = alias(t, p, &table);
    p = next;
    if alias != table && matches!(t.get(p), Some(Tok::Group(_))) {
        p += 1;
    }
    push(
        b,
        f,
        Source {
            table,
            alias,
            kind,
            pinned,
            reported: false,
        },
    );
    p
}

/// Reads a target table at `p` (`[ONLY] name [[AS] alias]`) into the block.
fn target(t: &[Tok], mut p: usize, ctx: &Ctx, f: &mut Findings, b: &mut Block) -> usize {
    p += usize::from(word(t, p, "only"));
    let Some((table, next)) = table_name(t, p) else {
        f.problems
            .push("a statement target this reader does not follow".into());
        return t.len();
    };
    let (alias, next) = alias(t, next, &table);
    let (kind, pinned) = kind_of(&table, ctx);
    push(
        b,
        f,
        Source {
            table,
            alias,
            kind,
            pinned,
            reported: false,
        },
    );
    next
}

fn update(
    t: &[Tok],
    p: usize,
    chain: &[&[Source]],
    ctx: &Ctx,
    f: &mut Findings,
    b: &mut Block,
    conds: &mut Vec<Cond>,
) {
    let p = target(t, p + 1, ctx, f, b);
    // The SET list restricts nothing.
    let mut end = find_words(t, p, &["from", "where", "returning"]);
    if word(t, end, "from") {
        end = from_list(t, end + 1, chain, ctx, f, b, conds);
    }
    where_clause(t, end, conds);
}

fn delete(
    t: &[Tok],
    p: usize,
    chain: &[&[Source]],
    ctx: &Ctx,
    f: &mut Findings,
    b: &mut Block,
    conds: &mut Vec<Cond>,
) {
    if !word(t, p + 1, "from") {
        f.problems
            .push("a DELETE this reader does not follow".into());
        return;
    }
    let mut p = target(t, p + 2, ctx, f, b);
    if word(t, p, "using") {
        p = from_list(t, p + 1, chain, ctx, f, b, conds);
    }
    where_clause(t, p, conds);
}

fn insert(t: &[Tok], p: usize, chain: &[&[Source]], ctx: &Ctx, f: &mut Findings, b: &mut Block) {
    if !word(t, p + 1, "into") {
        f.problems
            .push("an INSERT this reader does not follow".into());
        return;
    }
    let mut p = target(t, p + 2, ctx, f, b);
    let columns: Vec<Vec<Tok>> = match t.get(p) {
        Some(Tok::Group(cols)) if !starts_query(cols) => {
            p += 1;
            split_commas(cols)
        }
        _ => Vec::new(),
    };
    let at = columns
        .iter()
        .position(|c| *c == [Tok::Word("tenant_id".into())]);
    let held = if word(t, p, "values") {
        // Every row's value for tenant_id is $1.
        let rows: Vec<&Tok> = t[p + 1..]
            .iter()
            .take_while(|x| matches!(x, Tok::Group(_)) || **x == Tok::Op(",".into()))
            .filter(|x| matches!(x, Tok::Group(_)))
            .collect();
        at.is_some_and(|k| {
            !rows.is_empty()
                && rows.iter().all(|row| match row {
                    Tok::Group(values) => split_commas(values)
                        .get(k)
                        .is_some_and(|v| is_tenant_param(v)),
                    _ => false,
                })
        })
    } else if word(t, p, "select") || word(t, p, "with") {
        // The query ends at `ON CONFLICT` or `RETURNING` (a join's `ON` is the query's).
        let end = (p..t.len())
            .find(|&i| (word(t, i, "on") && word(t, i + 1, "conflict")) || word(t, i, "returning"))
            .unwrap_or(t.len());
        let query = block(&t[p..end], chain, ctx, f);
        b.skip.push(p..end);
        at.is_some_and(|k| {
            query.items.get(k).is_some_and(|v| {
                is_tenant_param(v)
                    || column(v).is_some_and(|c| {
                        c.name == "tenant_id"
                            && query.sources.iter().any(|s| {
                                Some(&s.alias) == c.qual.as_ref()
                                    && s.pinned
                                    && matches!(s.kind, Kind::Tenant | Kind::Derived)
                            })
                    })
            })
        })
    } else {
        false
    };
    if let Some(s) = b.sources.last_mut()
        && s.kind == Kind::Tenant
    {
        s.pinned = held;
        if !held {
            s.reported = true;
            f.problems.push(format!(
                "INSERT INTO `{}` does not put $1 (or a held table's tenant_id) in a tenant_id \
                 column",
                s.table
            ));
        }
    }
}
