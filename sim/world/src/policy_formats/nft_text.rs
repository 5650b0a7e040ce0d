//! The plain text of `nft list ruleset` (and of `nft -f` files in the same block syntax),
//! turned into the JSON objects of `nft -j list ruleset`, so that one reader applies the rules
//! of the subset to both.
//!
//! Read: `table FAMILY NAME { chain NAME { type ... hook ... priority ...; policy ...; RULE... } }`,
//! and the `add table` / `delete table` / `flush ruleset` lines a file starts with. A rule is
//! read statement by statement: `ip daddr`, `ip6 daddr`, `ip protocol`, `ip6 nexthdr`,
//! `tcp dport`, `udp dport`, `th dport`, `meta l4proto`, `meta nfproto`, `oif`/`oifname`,
//! `ct state`, `counter`, `log`, `comment`, and the verdicts. Anything else is an error naming
//! the line, so that nothing is left out unseen.

use serde_json::{json, Map, Value};

use super::import::ImportError;

/// A token and the line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
    Comma,
    Newline,
}

/// The ruleset as the `"nftables"` list of `nft -j list ruleset`.
pub(crate) fn to_json(text: &str) -> Result<Vec<Value>, ImportError> {
    let lines: Vec<&str> = text.lines().collect();
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        lines: &lines,
        out: Vec::new(),
    };
    p.file()?;
    Ok(p.out)
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ImportError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '#' => break,
                c if c.is_whitespace() => {}
                '{' => out.push((Tok::Open, n)),
                '}' => out.push((Tok::Close, n)),
                ';' => out.push((Tok::Semi, n)),
                ',' => out.push((Tok::Comma, n)),
                '"' => {
                    let mut s = String::new();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some(c) => s.push(c),
                            None => {
                                return Err(ImportError::Syntax {
                                    line: n,
                                    text: line.trim().to_owned(),
                                    message: "an unterminated quote".to_owned(),
                                })
                            }
                        }
                    }
                    out.push((Tok::Quoted(s), n));
                }
                c => {
                    let mut s = String::from(c);
                    while let Some(&c) = chars.peek() {
                        if c.is_whitespace() || "{};,\"#".contains(c) {
                            break;
                        }
                        s.push(c);
                        chars.next();
                    }
                    out.push((Tok::Word(s), n));
                }
            }
        }
        out.push((Tok::Newline, n));
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    lines: &'a [&'a str],
    out: Vec<Value>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos.min(self.toks.len().saturating_sub(1)))
            .map_or(0, |(_, n)| *n)
    }

    fn error(&self, message: &str) -> ImportError {
        let line = self.line();
        ImportError::Syntax {
            line,
            text: self
                .lines
                .get(line.wrapping_sub(1))
                .map_or("", |l| l.trim())
                .to_owned(),
            message: message.to_owned(),
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline | Tok::Semi)) {
            self.pos += 1;
        }
    }

    fn word(&mut self, what: &str) -> Result<String, ImportError> {
        match self.next() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(self.error(&format!("expected {what}")))
            }
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ImportError> {
        if self.next() == Some(tok) {
            Ok(())
        } else {
            self.pos -= 1;
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn skip_line(&mut self) {
        while !matches!(self.next(), None | Some(Tok::Newline)) {}
    }

    fn file(&mut self) -> Result<(), ImportError> {
        loop {
            self.skip_separators();
            let Some(tok) = self.peek().cloned() else {
                return Ok(());
            };
            match tok {
                Tok::Word(w) if w == "table" => {
                    self.pos += 1;
                    self.table()?;
                }
                Tok::Word(w) if matches!(w.as_str(), "add" | "delete" | "flush") => {
                    let start = self.pos;
                    self.skip_line();
                    let words: Vec<&Tok> =
                        self.toks[start..self.pos].iter().map(|(t, _)| t).collect();
                    let table_only = matches!(words.get(1), Some(Tok::Word(w)) if w == "table" || w == "ruleset")
                        && !words.contains(&&Tok::Open);
                    if !table_only {
                        self.pos = start;
                        return Err(self.error("only `table ... { ... }` blocks (and add/delete table, flush ruleset) are read: list the ruleset with `nft list ruleset`"));
                    }
                }
                _ => return Err(self.error("expected `table FAMILY NAME {`")),
            }
        }
    }

    fn table(&mut self) -> Result<(), ImportError> {
        let family = self.word("a table family")?;
        let name = self.word("a table name")?;
        self.expect(Tok::Open, "`{` after the table name")?;
        self.out
            .push(json!({"table": {"family": family, "name": name}}));
        loop {
            self.skip_separators();
            match self.next() {
                Some(Tok::Close) => return Ok(()),
                Some(Tok::Word(w)) if w == "chain" => self.chain(&family, &name)?,
                Some(Tok::Word(w)) if w == "comment" || w == "flags" => self.skip_line(),
                Some(Tok::Word(w)) => {
                    self.pos -= 1;
                    return Err(self.error(&format!(
                        "a table's `{w}` cannot be read (named sets, maps and flowtables are outside the policy's subset)"
                    )));
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.error("expected `chain NAME {` or `}`"));
                }
            }
        }
    }

    fn chain(&mut self, family: &str, table: &str) -> Result<(), ImportError> {
        let name = self.word("a chain name")?;
        self.expect(Tok::Open, "`{` after the chain name")?;
        let mut chain = Map::new();
        chain.insert("family".into(), json!(family));
        chain.insert("table".into(), json!(table));
        chain.insert("name".into(), json!(name));
        let mut rules = Vec::new();
        loop {
            self.skip_separators();
            let line = self.line();
            match self.peek().cloned() {
                Some(Tok::Close) => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::Word(w)) if w == "type" => self.chain_type(&mut chain)?,
                Some(Tok::Word(w)) if w == "policy" => {
                    self.pos += 1;
                    let policy = self.word("accept or drop")?;
                    chain.insert("policy".into(), json!(policy));
                }
                Some(Tok::Word(w)) if w == "comment" => self.skip_line(),
                Some(_) => {
                    let mut rule = self.rule(family, table, &name)?;
                    rule.insert("line".into(), json!(line));
                    rule.insert(
                        "text".into(),
                        json!(self.lines.get(line - 1).map_or("", |l| l.trim())),
                    );
                    rules.push(json!({ "rule": rule }));
                }
                None => return Err(self.error("the chain has no closing `}`")),
            }
        }
        self.out.push(json!({ "chain": chain }));
        self.out.extend(rules);
        Ok(())
    }

    fn chain_type(&mut self, chain: &mut Map<String, Value>) -> Result<(), ImportError> {
        self.pos += 1;
        chain.insert("type".into(), json!(self.word("a chain type")?));
        while let Some(Tok::Word(w)) = self.peek().cloned() {
            self.pos += 1;
            match w.as_str() {
                "hook" => {
                    chain.insert("hook".into(), json!(self.word("a hook")?));
                }
                "device" => {
                    self.word("a device")?;
                }
                "priority" => {
                    while matches!(self.peek(), Some(Tok::Word(_))) {
                        self.pos += 1;
                    }
                }
                _ => return Err(self.error("expected hook, device or priority")),
            }
        }
        Ok(())
    }

    /// The statements up to the end of the line (or `;`), as a JSON rule.
    fn rule(
        &mut self,
        family: &str,
        table: &str,
        chain: &str,
    ) -> Result<Map<String, Value>, ImportError> {
        let mut exprs = Vec::new();
        let mut rule = Map::new();
        rule.insert("family".into(), json!(family));
        rule.insert("table".into(), json!(table));
        rule.insert("chain".into(), json!(chain));
        while let Some(Tok::Word(w)) = self.peek().cloned() {
            self.pos += 1;
            match w.as_str() {
                "ip" | "ip6" | "tcp" | "udp" | "th" => {
                    let field = self.word("a header field")?;
                    exprs.push(self.matching(json!({"payload": {"protocol": w, "field": field}}))?);
                }
                "meta" => {
                    let key = self.word("a meta key")?;
                    exprs.push(self.matching(json!({"meta": {"key": key}}))?);
                }
                "oif" | "oifname" | "iif" | "iifname" | "l4proto" | "nfproto" | "mark"
                | "skuid" | "skgid" => {
                    exprs.push(self.matching(json!({"meta": {"key": w}}))?);
                }
                "ct" => {
                    let key = self.word("a conntrack key")?;
                    exprs.push(self.matching(json!({"ct": {"key": key}}))?);
                }
                "counter" => {
                    while let Some(Tok::Word(k)) = self.peek() {
                        if k != "packets" && k != "bytes" {
                            break;
                        }
                        self.pos += 1;
                        self.word("a count")?;
                    }
                    exprs.push(json!({"counter": null}));
                }
                "log" => {
                    while let Some(Tok::Word(k)) = self.peek() {
                        if !matches!(
                            k.as_str(),
                            "prefix" | "level" | "group" | "snaplen" | "queue-threshold"
                        ) {
                            break;
                        }
                        self.pos += 1;
                        self.word("a log option's value")?;
                    }
                    exprs.push(json!({"log": null}));
                }
                "accept" | "drop" | "return" | "continue" => exprs.push(json!({ w: null })),
                "reject" => {
                    self.reject_options();
                    exprs.push(json!({"reject": null}));
                }
                "jump" | "goto" => {
                    let target = self.word("a chain to jump to")?;
                    exprs.push(json!({ w: {"target": target} }));
                }
                "comment" => {
                    let text = self.word("the comment")?;
                    rule.insert("comment".into(), json!(text));
                }
                _ => {
                    self.pos -= 1;
                    return Err(self.error(&format!(
                        "`{w}` cannot be read: a policy rule matches protocol, destination address and port, connection state or loopback"
                    )));
                }
            }
        }
        match self.peek() {
            None | Some(Tok::Newline | Tok::Semi | Tok::Close) => {}
            _ => return Err(self.error("unexpected `{`, `,` or quote in a rule")),
        }
        rule.insert("expr".into(), Value::Array(exprs));
        Ok(rule)
    }

    fn reject_options(&mut self) {
        if !matches!(self.peek(), Some(Tok::Word(w)) if w == "with") {
            return;
        }
        self.pos += 1;
        let kind = self.word("").unwrap_or_default();
        if matches!(self.peek(), Some(Tok::Word(w)) if w == "type") {
            self.pos += 1;
        }
        if kind == "tcp" || matches!(self.peek(), Some(Tok::Word(_))) {
            self.pos += 1;
        }
    }

    /// `[!= | ==] VALUE` after a match's left side.
    fn matching(&mut self, left: Value) -> Result<Value, ImportError> {
        let mut op = "==".to_owned();
        if let Some(Tok::Word(w)) = self.peek() {
            if matches!(w.as_str(), "!=" | "==" | "<" | ">" | "<=" | ">=") {
                op = w.clone();
                self.pos += 1;
            }
        }
        let right = self.value()?;
        Ok(json!({"match": {"op": op, "left": left, "right": right}}))
    }

    /// One value, a comma list (`established,related`) or a set `{ a, b }`.
    fn value(&mut self) -> Result<Value, ImportError> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                while self.peek() == Some(&Tok::Newline) {
                    self.pos += 1;
                }
                match self.next() {
                    Some(Tok::Close) => break,
                    Some(Tok::Comma) => {}
                    Some(Tok::Word(w) | Tok::Quoted(w)) => items.push(element(&w)),
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("a set is `{ a, b, ... }`"));
                    }
                }
            }
            return Ok(json!({ "set": items }));
        }
        let first = self.word("a value")?;
        if self.peek() != Some(&Tok::Comma) {
            return Ok(element(&first));
        }
        let mut items = vec![element(&first)];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            items.push(element(&self.word("a value after `,`")?));
        }
        Ok(Value::Array(items))
    }
}

/// A value as `nft -j` writes it: a number, a range, a prefix, or a string.
fn element(text: &str) -> Value {
    if let Ok(n) = text.parse::<u64>() {
        return json!(n);
    }
    if let Some((addr, len)) = text.split_once('/') {
        if let (Ok(addr), Ok(len)) = (addr.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
            return json!({"prefix": {"addr": addr.to_string(), "len": len}});
        }
    }
    if let Some((a, b)) = text.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
            return json!({"range": [a, b]});
        }
        if let (Ok(a), Ok(b)) = (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
            return json!({"range": [a.to_string(), b.to_string()]});
        }
    }
    json!(text)
}
