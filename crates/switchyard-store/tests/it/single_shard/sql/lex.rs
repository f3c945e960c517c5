//! SQL split into tokens, each parenthesised part one group.

/// A token; a parenthesised part is one `Group`.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A keyword or identifier, lower case.
    Word(String),
    /// `$n`.
    Param(u32),
    /// A string or number.
    Lit,
    /// An operator or punctuation.
    Op(String),
    /// `( … )`.
    Group(Vec<Tok>),
}

/// Splits SQL into tokens, comments dropped.
pub fn lex(sql: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = sql.chars().collect();
    let mut stack: Vec<Vec<Tok>> = vec![Vec::new()];
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let tok = if ch.is_whitespace() {
            i += 1;
            continue;
        } else if ch == '-' && next == Some('-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        } else if ch == '/' && next == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            continue;
        } else if ch == '\'' {
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err("an unterminated string".into()),
                    Some('\'') if c.get(i + 1) == Some(&'\'') => i += 2,
                    Some('\'') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
            Tok::Lit
        } else if ch == '"' {
            let start = i + 1;
            i = start;
            while i < c.len() && c[i] != '"' {
                i += 1;
            }
            let name: String = c[start..i.min(c.len())].iter().collect();
            i += 1;
            Tok::Word(name.to_lowercase())
        } else if ch == '$' && next.is_some_and(|n| n.is_ascii_digit()) {
            let start = i + 1;
            i = start;
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            let n: String = c[start..i].iter().collect();
            Tok::Param(n.parse().map_err(|_| format!("parameter ${n}"))?)
        } else if ch == '$' {
            // A dollar-quoted string: `$tag$ … $tag$`.
            let start = i;
            i += 1;
            while i < c.len() && c[i] != '$' {
                i += 1;
            }
            let tag: String = c[start..=i.min(c.len() - 1)].iter().collect();
            let rest: String = c[i + 1..].iter().collect();
            let end = rest
                .find(&tag)
                .ok_or_else(|| format!("an unterminated {tag} string"))?;
            i += 1 + rest[..end].chars().count() + tag.chars().count();
            Tok::Lit
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '$') {
                i += 1;
            }
            Tok::Word(c[start..i].iter().collect::<String>().to_lowercase())
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
            Tok::Lit
        } else if ch == '(' {
            stack.push(Vec::new());
            i += 1;
            continue;
        } else if ch == ')' {
            let group = stack.pop().ok_or("an unbalanced `)`")?;
            stack
                .last_mut()
                .ok_or("an unbalanced `)`")?
                .push(Tok::Group(group));
            i += 1;
            continue;
        } else if ",;.[]".contains(ch) {
            i += 1;
            Tok::Op(ch.to_string())
        } else {
            let start = i;
            while i < c.len() && "+-*/<>=~!@#%^&|`?:".contains(c[i]) {
                i += 1;
            }
            if i == start {
                return Err(format!("an unexpected character {ch:?}"));
            }
            Tok::Op(c[start..i].iter().collect())
        };
        if let Some(level) = stack.last_mut() {
            level.push(tok);
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(tokens), true) => Ok(tokens),
        _ => Err("an unbalanced `(`".into()),
    }
}
