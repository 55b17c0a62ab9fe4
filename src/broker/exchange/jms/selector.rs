//! A JMS message selector, compiled once per binding from the Erlang term the JMS client sends,
//! and evaluated on each message's raw headers without allocating.
//!
//! The rules are those of RabbitMQ's `rabbitmq_jms_topic_exchange` (its `sjx_evaluator`):
//! identifiers read the AMQP `headers` table only; a missing header is SQL's unknown; the
//! message matches only when the selector is exactly `true`; `=` is Erlang's `==` (1 = 1.0,
//! '5' <> 5); `<` and friends use Erlang's term order (number < atom < binary), so they never
//! fail; `/` is real division and dividing by zero gives an atom (`plus_infinity`,
//! `minus_infinity`, `nan`); IN is exact (=:=) membership; LIKE matches the whole value byte by
//! byte, and its wildcards do not match a newline.
//!
//! Where the plugin's evaluation crashes (arithmetic on a string, LIKE on a number, a header of
//! a type it does not read: unsigned integers, timestamps, decimals, byte arrays, tables,
//! arrays, void), RabbitMQ closes the publisher's connection with 541; Warren instead treats
//! the binding as not matching and leaves the connection alone.

use super::term::Term;
use crate::protocol::raw_table::{self, RawValue};
use std::cmp::Ordering;

/// A compiled selector.
#[derive(Debug)]
pub struct Selector {
    root: Expr,
}

impl Selector {
    /// Compiles the binding's `rjms_erlang_selector` text. A valid term that is not a selector
    /// expression (`{foo}.`) compiles to one that never matches, as in RabbitMQ.
    pub fn compile(text: &[u8]) -> Result<Selector, String> {
        let term = super::term::parse(text)?;
        Ok(Selector {
            root: Expr::from_term(term),
        })
    }

    /// (identifier, string) when the selector is `identifier = 'string'` (either way round).
    pub fn string_equality(&self) -> Option<(&[u8], &[u8])> {
        match &self.root {
            Expr::Cmp(CmpOp::Eq, a, b) => match (&**a, &**b) {
                (Expr::Ident(k), Expr::Lit(Lit::Binary(v)))
                | (Expr::Lit(Lit::Binary(v)), Expr::Ident(k)) => Some((k, v)),
                _ => None,
            },
            _ => None,
        }
    }

    /// A selector that matches nothing.
    pub fn never() -> Selector {
        Selector {
            root: Expr::Lit(Lit::Bool(false)),
        }
    }

    /// Whether a message with these headers (the raw table, as the properties carry it)
    /// passes the selector.
    pub fn matches(&self, headers: Option<&[u8]>) -> bool {
        let headers = headers.unwrap_or(&[]);
        matches!(self.root.eval(headers), Ok(Val::Bool(true)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug)]
enum Expr {
    /// A literal; also any term that is not an operator (it evaluates to itself).
    Lit(Lit),
    Ident(Box<[u8]>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Negate(Box<Expr>),
    Plus(Box<Expr>),
    Between {
        negated: bool,
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    In {
        negated: bool,
        value: Box<Expr>,
        list: Vec<Lit>,
    },
    Like {
        negated: bool,
        value: Box<Expr>,
        pattern: Option<Pattern>,
    },
    IsNull {
        negated: bool,
        value: Box<Expr>,
    },
}

/// A literal value.
#[derive(Debug, PartialEq)]
enum Lit {
    Undefined,
    Bool(bool),
    Int(i128),
    Float(f64),
    Atom(Box<str>),
    Binary(Box<[u8]>),
    /// Any other term (a tuple or list): compares equal only to itself.
    Other(Term),
}

impl Lit {
    fn from_term(term: Term) -> Lit {
        match term {
            Term::Atom(a) => match a.as_str() {
                "true" => Lit::Bool(true),
                "false" => Lit::Bool(false),
                // The atom `undefined` is the evaluator's "unknown".
                "undefined" => Lit::Undefined,
                _ => Lit::Atom(a.into()),
            },
            Term::Int(n) => Lit::Int(n),
            Term::Float(f) => Lit::Float(f),
            Term::Binary(b) => Lit::Binary(b.into()),
            other => Lit::Other(other),
        }
    }

    fn val(&self) -> Val<'_> {
        match self {
            Lit::Undefined => Val::Undefined,
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Int(n) => Val::Int(*n),
            Lit::Float(f) => Val::Float(*f),
            Lit::Atom(a) => Val::Atom(a),
            Lit::Binary(b) => Val::Binary(b),
            Lit::Other(t) => Val::Other(t),
        }
    }
}

impl Expr {
    fn from_term(term: Term) -> Expr {
        let Term::Tuple(items) = term else {
            return Expr::Lit(Lit::from_term(term));
        };
        let op = match items.first() {
            Some(Term::Atom(a)) => a.clone(),
            _ => return Expr::Lit(Lit::Other(Term::Tuple(items))),
        };
        let mut args = items.into_iter().skip(1);
        let n = args.len();
        let mut next = || Box::new(Expr::from_term(args.next().unwrap_or(Term::Int(0))));
        let cmp = |o| match o {
            "=" => Some(CmpOp::Eq),
            "<>" => Some(CmpOp::Ne),
            "<" => Some(CmpOp::Lt),
            "<=" => Some(CmpOp::Le),
            ">" => Some(CmpOp::Gt),
            ">=" => Some(CmpOp::Ge),
            _ => None,
        };
        let arith = |o| match o {
            "+" => Some(ArithOp::Add),
            "-" => Some(ArithOp::Sub),
            "*" => Some(ArithOp::Mul),
            "/" => Some(ArithOp::Div),
            _ => None,
        };
        match (op.as_str(), n) {
            ("ident", 1) => match args.next() {
                Some(Term::Binary(name)) => Expr::Ident(name.into()),
                Some(other) => Expr::Lit(Lit::Other(Term::Tuple(vec![Term::Atom(op), other]))),
                None => Expr::Lit(Lit::Undefined),
            },
            ("not", 1) => Expr::Not(next()),
            ("and", 2) => Expr::And(next(), next()),
            ("or", 2) => Expr::Or(next(), next()),
            ("-", 1) => Expr::Negate(next()),
            ("+", 1) => Expr::Plus(next()),
            (o, 2) if cmp(o).is_some() => Expr::Cmp(cmp(o).unwrap_or(CmpOp::Eq), next(), next()),
            (o, 2) if arith(o).is_some() => {
                Expr::Arith(arith(o).unwrap_or(ArithOp::Add), next(), next())
            }
            ("between" | "not_between", 3) => Expr::Between {
                negated: op == "not_between",
                value: next(),
                low: next(),
                high: next(),
            },
            ("in" | "not_in", 2) => {
                let value = next();
                let list = match args.next() {
                    Some(Term::List(items)) => items.into_iter().map(Lit::from_term).collect(),
                    _ => Vec::new(),
                };
                Expr::In {
                    negated: op == "not_in",
                    value,
                    list,
                }
            }
            ("like" | "not_like", 3) => {
                let value = next();
                let pattern = match (args.next(), args.next()) {
                    (Some(Term::Binary(p)), Some(escape)) => Pattern::compile(&p, &escape),
                    _ => None,
                };
                Expr::Like {
                    negated: op == "not_like",
                    value,
                    pattern,
                }
            }
            ("is_null" | "not_null", 1) => Expr::IsNull {
                negated: op == "not_null",
                value: next(),
            },
            _ => {
                let mut items = vec![Term::Atom(op)];
                items.extend(args);
                Expr::Lit(Lit::Other(Term::Tuple(items)))
            }
        }
    }

    fn eval<'a>(&'a self, headers: &'a [u8]) -> Result<Val<'a>, Crash> {
        Ok(match self {
            Expr::Lit(l) => l.val(),
            Expr::Ident(name) => match raw_table::lookup(headers, name) {
                None => Val::Undefined,
                Some(v) => header_value(v)?,
            },
            Expr::Not(e) => not3(e.eval(headers)?),
            Expr::And(a, b) => match (a.eval(headers)?, b.eval(headers)?) {
                (Val::Bool(false), _) | (_, Val::Bool(false)) => Val::Bool(false),
                (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
                _ => Val::Undefined,
            },
            Expr::Or(a, b) => match (a.eval(headers)?, b.eval(headers)?) {
                (Val::Bool(true), _) | (_, Val::Bool(true)) => Val::Bool(true),
                (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
                _ => Val::Undefined,
            },
            Expr::Cmp(op, a, b) => {
                let (x, y) = (a.eval(headers)?, b.eval(headers)?);
                if x.is_undefined() || y.is_undefined() {
                    return Ok(Val::Undefined);
                }
                Val::Bool(match op {
                    CmpOp::Eq => loose_eq(&x, &y),
                    CmpOp::Ne => !loose_eq(&x, &y),
                    CmpOp::Lt => term_order(&x, &y) == Ordering::Less,
                    CmpOp::Le => term_order(&x, &y) != Ordering::Greater,
                    CmpOp::Gt => term_order(&x, &y) == Ordering::Greater,
                    CmpOp::Ge => term_order(&x, &y) != Ordering::Less,
                })
            }
            Expr::Arith(op, a, b) => {
                let (x, y) = (a.eval(headers)?, b.eval(headers)?);
                if x.is_undefined() || y.is_undefined() {
                    return Ok(Val::Undefined);
                }
                arithmetic(*op, x, y)?
            }
            Expr::Negate(e) => match e.eval(headers)? {
                Val::Undefined => Val::Undefined,
                Val::Int(n) => Val::Int(n.checked_neg().ok_or(Crash)?),
                Val::Float(f) => Val::Float(-f),
                _ => return Err(Crash),
            },
            Expr::Plus(e) => match e.eval(headers)? {
                v @ (Val::Undefined | Val::Int(_) | Val::Float(_)) => v,
                _ => return Err(Crash),
            },
            Expr::Between {
                negated,
                value,
                low,
                high,
            } => {
                let (v, lo, hi) = (
                    value.eval(headers)?,
                    low.eval(headers)?,
                    high.eval(headers)?,
                );
                if v.is_undefined() || lo.is_undefined() || hi.is_undefined() {
                    return Ok(Val::Undefined);
                }
                let inside = term_order(&lo, &v) != Ordering::Greater
                    && term_order(&v, &hi) != Ordering::Greater;
                Val::Bool(inside != *negated)
            }
            Expr::In {
                negated,
                value,
                list,
            } => match value.eval(headers)? {
                Val::Undefined => Val::Undefined,
                v => Val::Bool(list.iter().any(|l| exact_eq(&v, &l.val())) != *negated),
            },
            Expr::Like {
                negated,
                value,
                pattern,
            } => match value.eval(headers)? {
                Val::Undefined => Val::Undefined,
                Val::Binary(b) => {
                    // A pattern whose ESCAPE is not one byte cannot be built: the plugin
                    // crashes on every present value.
                    let p = pattern.as_ref().ok_or(Crash)?;
                    Val::Bool(p.matches(b) != *negated)
                }
                _ => return Err(Crash),
            },
            Expr::IsNull { negated, value } => {
                Val::Bool(value.eval(headers)?.is_undefined() != *negated)
            }
        })
    }
}

/// The plugin's evaluation failed; the binding does not match.
#[derive(Debug)]
struct Crash;

/// A value during evaluation, borrowed from the headers or the compiled selector.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Undefined,
    Bool(bool),
    Int(i128),
    Float(f64),
    Atom(&'a str),
    Binary(&'a [u8]),
    Other(&'a Term),
}

impl Val<'_> {
    fn is_undefined(&self) -> bool {
        matches!(self, Val::Undefined)
    }

    /// Erlang's order of types: number < atom < tuple < list < binary.
    fn rank(&self) -> u8 {
        match self {
            Val::Int(_) | Val::Float(_) => 0,
            Val::Bool(_) | Val::Atom(_) | Val::Undefined => 1,
            Val::Other(Term::Tuple(_)) => 2,
            Val::Other(_) => 3,
            Val::Binary(_) => 4,
        }
    }

    fn atom_name(&self) -> &str {
        match self {
            Val::Bool(true) => "true",
            Val::Bool(false) => "false",
            Val::Undefined => "undefined",
            Val::Atom(a) => a,
            _ => "",
        }
    }
}

/// The header types the plugin reads; any other type present under the name crashes it.
fn header_value(v: RawValue<'_>) -> Result<Val<'_>, Crash> {
    match v {
        RawValue::LongStr(b) => Ok(Val::Binary(b)),
        RawValue::Signed(n) => Ok(Val::Int(n.into())),
        // Erlang has no NaN or infinities: the plugin cannot read such a header.
        RawValue::Float(f) if f.is_finite() => Ok(Val::Float(f)),
        RawValue::Bool(b) => Ok(Val::Bool(b)),
        _ => Err(Crash),
    }
}

fn not3(v: Val<'_>) -> Val<'_> {
    match v {
        Val::Bool(b) => Val::Bool(!b),
        _ => Val::Undefined,
    }
}

/// Erlang's `==`: numbers by value (1 == 1.0), everything else by type and value.
fn loose_eq(x: &Val<'_>, y: &Val<'_>) -> bool {
    match (x, y) {
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            number_order(x, y) == Ordering::Equal
        }
        _ => exact_eq(x, y),
    }
}

/// Erlang's `=:=`: 1 and 1.0 differ.
fn exact_eq(x: &Val<'_>, y: &Val<'_>) -> bool {
    match (x, y) {
        (Val::Int(a), Val::Int(b)) => a == b,
        (Val::Float(a), Val::Float(b)) => a == b,
        (Val::Binary(a), Val::Binary(b)) => a == b,
        (Val::Other(a), Val::Other(b)) => a == b,
        (Val::Int(_) | Val::Float(_) | Val::Binary(_) | Val::Other(_), _) => false,
        (_, Val::Int(_) | Val::Float(_) | Val::Binary(_) | Val::Other(_)) => false,
        _ => x.atom_name() == y.atom_name(),
    }
}

fn number_order(x: &Val<'_>, y: &Val<'_>) -> Ordering {
    match (x, y) {
        (Val::Int(a), Val::Int(b)) => a.cmp(b),
        // Floats here are finite (headers with NaN or infinities do not match), and 0 equals
        // -0.0 as in Erlang's `==`.
        (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b).unwrap_or(Ordering::Equal),
        (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)).unwrap_or(Ordering::Equal),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// Erlang's term order (the comparison operators never fail).
fn term_order(x: &Val<'_>, y: &Val<'_>) -> Ordering {
    match x.rank().cmp(&y.rank()) {
        Ordering::Equal => {}
        other => return other,
    }
    match (x, y) {
        (Val::Binary(a), Val::Binary(b)) => a.cmp(b),
        (Val::Other(a), Val::Other(b)) => {
            if a == b {
                Ordering::Equal
            } else {
                // Structured literals in comparisons: only equality is meaningful.
                format!("{a:?}").cmp(&format!("{b:?}"))
            }
        }
        _ if x.rank() == 0 => number_order(x, y),
        _ => x.atom_name().cmp(y.atom_name()),
    }
}

fn arithmetic<'a>(op: ArithOp, x: Val<'a>, y: Val<'a>) -> Result<Val<'a>, Crash> {
    let as_f64 = |v: &Val| match v {
        Val::Int(n) => Some(*n as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    };
    if op == ArithOp::Div && as_f64(&y) == Some(0.0) {
        // A zero divisor gives an atom (above every number), whatever the dividend is: the
        // plugin compares it with 0 in term order, so a string over 0 is plus_infinity.
        return Ok(Val::Atom(match term_order(&x, &Val::Int(0)) {
            Ordering::Greater => "plus_infinity",
            Ordering::Less => "minus_infinity",
            Ordering::Equal => "nan",
        }));
    }
    let (Some(fx), Some(fy)) = (as_f64(&x), as_f64(&y)) else {
        return Err(Crash);
    };
    if op == ArithOp::Div {
        // Always real division.
        return finite(fx / fy);
    }
    if let (Val::Int(a), Val::Int(b)) = (x, y) {
        let r = match op {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            _ => a.checked_mul(b),
        };
        return r.map(Val::Int).ok_or(Crash);
    }
    finite(match op {
        ArithOp::Add => fx + fy,
        ArithOp::Sub => fx - fy,
        _ => fx * fy,
    })
}

/// Erlang float arithmetic that overflows raises badarith.
fn finite<'a>(f: f64) -> Result<Val<'a>, Crash> {
    if f.is_finite() {
        Ok(Val::Float(f))
    } else {
        Err(Crash)
    }
}

/// A LIKE pattern: literal bytes, `_` (one byte) and `%` (any run), matched against the whole
/// value; neither wildcard matches a newline (the plugin's regex has no dot-all).
#[derive(Debug, PartialEq)]
pub(super) struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Byte(u8),
    One,
    Any,
}

impl Pattern {
    /// `escape` is the atom `no_escape` or a one-byte binary; anything else gives no pattern
    /// (the plugin cannot build its regex).
    fn compile(pattern: &[u8], escape: &Term) -> Option<Pattern> {
        let escape = match escape {
            Term::Atom(a) if a == "no_escape" => None,
            Term::Binary(b) if b.len() == 1 => Some(b[0]),
            _ => return None,
        };
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut bytes = pattern.iter().copied();
        while let Some(b) = bytes.next() {
            tokens.push(match b {
                _ if Some(b) == escape => Token::Byte(bytes.next().unwrap_or(b)),
                b'_' => Token::One,
                b'%' => Token::Any,
                _ => Token::Byte(b),
            });
        }
        Some(Pattern { tokens })
    }

    /// A whole-value match with backtracking to the last `%` (linear in practice).
    fn matches(&self, value: &[u8]) -> bool {
        let (mut t, mut v) = (0, 0);
        // Where the last `%` was, and the value position it has absorbed up to.
        let mut star: Option<(usize, usize)> = None;
        while v < value.len() {
            match self.tokens.get(t) {
                Some(Token::Byte(b)) if *b == value[v] => {
                    t += 1;
                    v += 1;
                    continue;
                }
                Some(Token::One) if value[v] != b'\n' => {
                    t += 1;
                    v += 1;
                    continue;
                }
                Some(Token::Any) => {
                    star = Some((t, v));
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                // Let the last `%` take one more byte, unless that byte is a newline.
                Some((st, sv)) if value[sv] != b'\n' => {
                    star = Some((st, sv + 1));
                    t = st + 1;
                    v = sv + 1;
                }
                _ => return false,
            }
        }
        self.tokens[t..].iter().all(|k| *k == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::table::encode_table;
    use crate::protocol::{AMQPValue, FieldTable};

    fn headers(entries: &[(&str, AMQPValue)]) -> Vec<u8> {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        encode_table(&t)
    }

    fn sel(text: &str) -> Selector {
        Selector::compile(text.as_bytes()).unwrap()
    }

    fn item() -> Vec<u8> {
        headers(&[
            ("colour", AMQPValue::LongString("red".into())),
            ("weight", AMQPValue::LongInt(12)),
            ("ratio", AMQPValue::Double(2.5)),
            ("flag", AMQPValue::Boolean(true)),
            ("JMSPriority", AMQPValue::LongInt(7)),
            ("JMSType", AMQPValue::LongString("car".into())),
            ("note", AMQPValue::LongString("ab\ncd".into())),
            ("name", AMQPValue::LongString("h\u{e9}llo".into())),
            ("count", AMQPValue::LongUInt(3)),
        ])
    }

    fn check(text: &str) -> bool {
        sel(text).matches(Some(&item()))
    }

    #[test]
    fn comparisons_and_logic() {
        assert!(check(r#"{'=',{'ident',<<"colour">>},<<"red">>}."#));
        assert!(!check(r#"{'=',{'ident',<<"colour">>},<<"blue">>}."#));
        assert!(check(
            r#"{'and',{'>',{'ident',<<"JMSPriority">>},4},{'=',{'ident',<<"JMSType">>},<<"car">>}}."#
        ));
        assert!(!check(
            r#"{'not',{'or',{'=',{'ident',<<"a">>},1},{'<>',{'ident',<<"weight">>},12}}}."#
        ));
        assert!(check(
            r#"{'not',{'or',{'=',{'ident',<<"weight">>},1},{'<>',{'ident',<<"weight">>},12}}}."#
        ));
        assert!(check(r#"{'ident',<<"flag">>}."#));
        assert!(check(r#"{'=',{'ident',<<"flag">>},'true'}."#));
        assert!(check(r#"{'=',{'ident',<<"weight">>},12.0}."#), "1 == 1.0");
        assert!(
            !check(r#"{'=',{'ident',<<"weight">>},<<"12">>}."#),
            "'12' <> 12"
        );
        assert!(
            check(r#"{'>',{'ident',<<"colour">>},1000}."#),
            "a string sorts above numbers"
        );
        assert!(check(
            r#"{'and',{'>=',{'ident',<<"ratio">>},2.5},{'<=',{'ident',<<"ratio">>},1000.0}}."#
        ));
    }

    #[test]
    fn unknown_is_neither_true_nor_false() {
        assert!(!check(r#"{'=',{'ident',<<"missing">>},1}."#));
        assert!(!check(r#"{'not',{'=',{'ident',<<"missing">>},1}}."#));
        assert!(check(
            r#"{'or',{'=',{'ident',<<"missing">>},1},{'ident',<<"flag">>}}."#
        ));
        assert!(!check(
            r#"{'and',{'=',{'ident',<<"missing">>},1},{'ident',<<"flag">>}}."#
        ));
        assert!(check(r#"{'is_null',{'ident',<<"missing">>}}."#));
        assert!(check(r#"{'not_null',{'ident',<<"colour">>}}."#));
        assert!(
            sel(r#"{'is_null',{'ident',<<"x">>}}."#).matches(None),
            "no headers at all"
        );
    }

    #[test]
    fn arithmetic_between_and_in() {
        assert!(check(
            r#"{'>',{'+',{'*',{'-',{'ident',<<"weight">>}},3},{'/',{'ident',<<"weight">>},2}},-31}."#
        ));
        assert!(
            check(r#"{'=',{'/',{'ident',<<"weight">>},24},0.5}."#),
            "/ is real division"
        );
        assert!(
            check(r#"{'>',{'/',{'ident',<<"weight">>},0},1000000}."#),
            "x/0 is an atom"
        );
        assert!(check(r#"{'between',{'ident',<<"weight">>},1,12}."#));
        assert!(check(
            r#"{'not_between',{'ident',<<"weight">>},{'-',1},{'+',2}}."#
        ));
        assert!(check(
            r#"{'in',{'ident',<<"colour">>},[<<"green">>,<<"red">>]}."#
        ));
        assert!(!check(r#"{'in',{'ident',<<"weight">>},[<<"12">>]}."#));
        assert!(!check(r#"{'not_in',{'ident',<<"missing">>},[<<"x">>]}."#));
        assert!(
            !check(r#"{'=',{'+',{'ident',<<"colour">>},1},1}."#),
            "a crash is no match"
        );
        assert!(
            check(r#"{'=',{'/',{'ident',<<"colour">>},0},'plus_infinity'}."#),
            "a string over 0 is plus_infinity, as in the plugin"
        );
        assert!(check(r#"{'=',{'/',0,0.0},'nan'}."#));
        assert!(check(r#"{'=',{'/',{'-',2},0},'minus_infinity'}."#));
        assert!(
            !check(r#"{'=',{'/',{'ident',<<"colour">>},2},1}."#),
            "a string over a number crashes"
        );
        assert!(
            !check(r#"{'is_null',{'ident',<<"count">>}}."#),
            "an unsigned header crashes the plugin"
        );
    }

    #[test]
    fn floats_compare_as_erlang_numbers() {
        let h = headers(&[
            ("negzero", AMQPValue::Double(-0.0)),
            ("nan", AMQPValue::Double(f64::NAN)),
            ("inf", AMQPValue::Double(f64::INFINITY)),
        ]);
        let check = |text: &str| sel(text).matches(Some(&h));
        assert!(check(r#"{'=',{'ident',<<"negzero">>},0}."#), "0 == -0.0");
        assert!(!check(r#"{'<',{'ident',<<"negzero">>},0}."#));
        assert!(check(r#"{'=',{'ident',<<"negzero">>},0.0}."#));
        // Erlang has no NaN or infinity: such a header matches nothing, not everything.
        assert!(!check(r#"{'=',{'ident',<<"nan">>},1.0}."#));
        assert!(!check(r#"{'<>',{'ident',<<"nan">>},1.0}."#));
        assert!(!check(r#"{'>',{'ident',<<"inf">>},1.0}."#));
        assert!(!check(r#"{'is_null',{'ident',<<"inf">>}}."#));
    }

    #[test]
    fn like_matches_whole_values_byte_by_byte() {
        let like = |p: &str, esc: &str| {
            check(&format!(
                r#"{{'like',{{'ident',<<"colour">>}},<<"{p}">>,{esc}}}."#
            ))
        };
        assert!(like("r%", "'no_escape'"));
        assert!(like("_e_", "'no_escape'"));
        assert!(!like("e%", "'no_escape'"));
        assert!(like("%", "'no_escape'"));
        assert!(!like("re", "'no_escape'"));
        assert!(!like("r!%", r#"<<"!">>"#));
        assert!(!like("red", r#"<<"xy">>"#), "a two-byte escape crashes");
        let note = |p: &str| {
            check(&format!(
                r#"{{'like',{{'ident',<<"note">>}},<<"{p}">>,'no_escape'}}."#
            ))
        };
        assert!(!note("ab%"), "wildcards stop at a newline");
        assert!(note("ab\ncd"));
        let name = |p: &str| {
            check(&format!(
                r#"{{'like',{{'ident',<<"name">>}},<<"{p}">>,'no_escape'}}."#
            ))
        };
        assert!(!name("h_llo"), "_ is one byte");
        assert!(name("h__llo"));
        let p = Pattern::compile(b"a!%b%", &Term::Binary(b"!".to_vec())).unwrap();
        assert!(p.matches(b"a%bxyz"));
        assert!(!p.matches(b"axbxyz"));
        let p = Pattern::compile(b"%a%b%c", &Term::Atom("no_escape".into())).unwrap();
        assert!(p.matches(b"xxaxxbxxc"));
        assert!(!p.matches(b"xxaxxbxxcx"));
    }

    #[test]
    fn a_term_that_is_not_an_expression_never_matches() {
        assert!(!check("{foo}."));
        assert!(!check("42."));
        assert!(Selector::compile(b"not a term").is_err());
    }
}
