//! One import line, read as Python reads it: `import a.b [as x], ...` or `from a.b import c
//! [as x], ...` (parenthesized over lines, continued with `\\`, or `*`), each name with the
//! byte range it is written at.

use super::BRING_YOUR_OWN;
use super::lexer::{Problem, Scanner, is_name_byte};

/// A token of an import statement, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Name(String),
    Dot,
    Comma,
    Open,
    Close,
    Star,
}

/// One name an import binds: what it names (a dotted module or a member), the name it binds,
/// and where it is written.
#[derive(Debug)]
pub struct Item {
    /// The dotted name, or `*`.
    pub path: String,
    /// The name it is bound to, when `as` gives one.
    pub alias: Option<String>,
    /// Where it is written.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// A parsed import statement.
#[derive(Debug)]
pub enum Statement {
    /// `import a.b.c [as x], ...`.
    Import(Vec<Item>),
    /// `from a.b import c [as x], ...` or `from a.b import *`.
    From { module: Item, names: Vec<Item> },
}

/// Reads the statement at the scanner (its keyword first) to its end: the end of its logical
/// line, a `;`, or a comment; the scanner is left there.
pub fn parse_statement(scanner: &mut Scanner) -> Result<Statement, Problem> {
    let start = scanner.at;
    let tokens = tokens(scanner)?;
    let end = scanner.at;
    let not_python = || {
        Problem::new(
            start,
            end,
            "this import line is not one Python reads; write 'from twisted.application import service, internet' or 'import os'",
        )
    };
    let mut tokens = tokens.into_iter().peekable();
    let keyword = match tokens.next() {
        Some((Token::Name(word), _, _)) => word,
        _ => return Err(not_python()),
    };
    let dotted = |tokens: &mut std::iter::Peekable<std::vec::IntoIter<(Token, usize, usize)>>| {
        let mut path = String::new();
        let mut first = None;
        let mut last;
        loop {
            match tokens.next() {
                Some((Token::Name(name), from, to)) => {
                    first.get_or_insert(from);
                    last = to;
                    path.push_str(&name);
                }
                Some((Token::Dot, from, _)) if path.is_empty() => {
                    return Err(Problem::new(
                        from,
                        end,
                        format!(
                            "a relative import cannot run in a TAC file; {BRING_YOUR_OWN}, or share TAC code with load(\"other.tac\", \"name\")"
                        ),
                    ));
                }
                _ => return Err(not_python()),
            }
            if tokens.peek().map(|token| &token.0) == Some(&Token::Dot) {
                tokens.next();
                path.push('.');
            } else {
                return Ok(Item {
                    path,
                    alias: None,
                    start: first.unwrap_or(start),
                    end: last,
                });
            }
        }
    };
    let alias = |tokens: &mut std::iter::Peekable<std::vec::IntoIter<(Token, usize, usize)>>,
                 item: &mut Item|
     -> Result<(), Problem> {
        if matches!(tokens.peek(), Some((Token::Name(word), _, _)) if word == "as") {
            tokens.next();
            match tokens.next() {
                Some((Token::Name(name), _, to)) => {
                    item.alias = Some(name);
                    item.end = to;
                }
                _ => return Err(not_python()),
            }
        }
        Ok(())
    };
    match keyword.as_str() {
        "import" => {
            let mut items = Vec::new();
            loop {
                let mut item = dotted(&mut tokens)?;
                alias(&mut tokens, &mut item)?;
                items.push(item);
                match tokens.next() {
                    None => return Ok(Statement::Import(items)),
                    Some((Token::Comma, _, _)) => {}
                    _ => return Err(not_python()),
                }
            }
        }
        "from" => {
            let module = dotted(&mut tokens)?;
            match tokens.next() {
                Some((Token::Name(word), _, _)) if word == "import" => {}
                _ => return Err(not_python()),
            }
            if let Some((Token::Star, from, to)) = tokens.peek().cloned() {
                tokens.next();
                if tokens.next().is_some() {
                    return Err(not_python());
                }
                let star = Item {
                    path: "*".into(),
                    alias: None,
                    start: from,
                    end: to,
                };
                return Ok(Statement::From {
                    module,
                    names: vec![star],
                });
            }
            let parenthesized = tokens.peek().map(|token| &token.0) == Some(&Token::Open);
            if parenthesized {
                tokens.next();
            }
            let mut names = Vec::new();
            loop {
                match tokens.next() {
                    Some((Token::Name(name), from, to)) => {
                        let mut item = Item {
                            path: name,
                            alias: None,
                            start: from,
                            end: to,
                        };
                        alias(&mut tokens, &mut item)?;
                        names.push(item);
                    }
                    Some((Token::Close, _, _)) if parenthesized && !names.is_empty() => {
                        return match tokens.next() {
                            None => Ok(Statement::From { module, names }),
                            Some(_) => Err(not_python()),
                        };
                    }
                    _ => return Err(not_python()),
                }
                match tokens.next() {
                    None if !parenthesized => return Ok(Statement::From { module, names }),
                    Some((Token::Comma, _, _)) => {}
                    Some((Token::Close, _, _)) if parenthesized => {
                        return match tokens.next() {
                            None => Ok(Statement::From { module, names }),
                            Some(_) => Err(not_python()),
                        };
                    }
                    _ => return Err(not_python()),
                }
            }
        }
        _ => Err(not_python()),
    }
}

/// The tokens of the statement at the scanner, to its end.
fn tokens(scanner: &mut Scanner) -> Result<Vec<(Token, usize, usize)>, Problem> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    loop {
        scanner.skip_blanks();
        let start = scanner.at;
        let Some(byte) = scanner.peek() else {
            return Ok(tokens);
        };
        let token = match byte {
            b'\\' if scanner.bytes.get(start + 1) == Some(&b'\n') => {
                scanner.at += 2;
                continue;
            }
            b'\n' if depth > 0 => {
                scanner.at += 1;
                continue;
            }
            b'#' if depth > 0 => {
                scanner.skip_comment();
                continue;
            }
            b'\n' | b';' | b'#' => return Ok(tokens),
            b'.' => Token::Dot,
            b',' => Token::Comma,
            b'*' => Token::Star,
            b'(' => {
                depth += 1;
                Token::Open
            }
            b')' => {
                depth = depth.saturating_sub(1);
                Token::Close
            }
            _ if is_name_byte(byte) => {
                while scanner.peek().is_some_and(is_name_byte) {
                    scanner.at += 1;
                }
                let name = String::from_utf8_lossy(&scanner.bytes[start..scanner.at]).into_owned();
                tokens.push((Token::Name(name), start, scanner.at));
                continue;
            }
            _ => {
                return Err(Problem::new(
                    start,
                    start + 1,
                    "this import line is not one Python reads; write 'from twisted.application import service, internet' or 'import os'",
                ));
            }
        };
        scanner.at += 1;
        tokens.push((token, start, scanner.at));
    }
}
