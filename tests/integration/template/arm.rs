//! A small evaluator of ARM template expressions (`[if(parameters('x'), ..., ...)]`), enough to
//! "deploy" the template's conditions and computed settings with chosen parameters, a chosen cloud
//! (`environment()`) and the properties `reference()` returns. Functions it does not know are an
//! error, so a test never passes by accident.
//!
//! Semantics follow "Template functions" on Microsoft Learn: `if` evaluates only the branch it takes;
//! reading a property an object lacks fails the deployment ("The language expression property 'x'
//! doesn't exist, available properties are ...").

use std::collections::HashMap;

use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Expr {
    Str(String),
    Int(i64),
    Call(String, Vec<Expr>),
    Property(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
}

/// Parameters, cloud and resource state of one imagined deployment.
pub struct Deployment<'a> {
    pub template: &'a Value,
    pub parameters: HashMap<String, Value>,
    /// What `environment()` returns.
    pub environment: Value,
    /// What `reference(<resource id>, ...)` returns, by the id the template computes
    /// (`resourceId` renders `<type>/<name>/...`).
    pub references: HashMap<String, Value>,
}

impl<'a> Deployment<'a> {
    pub fn new(template: &'a Value, parameters: Value) -> Self {
        Deployment {
            template,
            parameters: parameters
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            environment: public_cloud(),
            references: HashMap::new(),
        }
    }

    /// A template value: an expression string is evaluated, as are the ones inside objects and
    /// arrays; anything else is returned as is.
    pub fn value(&self, v: &Value) -> Result<Value, String> {
        match v {
            Value::Object(map) => {
                return map
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
                    .collect::<Result<serde_json::Map<_, _>, String>>()
                    .map(Value::Object);
            }
            Value::Array(items) => {
                return items
                    .iter()
                    .map(|v| self.value(v))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array);
            }
            _ => {}
        }
        match v.as_str() {
            Some(text) if text.starts_with('[') && !text.starts_with("[[") => {
                let inner = &text[1..text.len() - 1];
                let mut parser = Parser {
                    text: inner.as_bytes(),
                    at: 0,
                };
                let expr = parser.expression()?;
                parser.skip_space();
                if parser.at != parser.text.len() {
                    return Err(format!("trailing text in {text}"));
                }
                self.eval(&expr)
            }
            _ => Ok(v.clone()),
        }
    }

    fn eval(&self, expr: &Expr) -> Result<Value, String> {
        match expr {
            Expr::Str(s) => Ok(Value::String(s.clone())),
            Expr::Int(i) => Ok(json!(i)),
            Expr::Property(target, name) => {
                let target = self.eval(target)?;
                let object = target
                    .as_object()
                    .ok_or_else(|| format!("property {name} of a non-object {target}"))?;
                object.get(name).cloned().ok_or_else(|| {
                    let available: Vec<&str> = object.keys().map(String::as_str).collect();
                    format!(
                        "The language expression property '{name}' doesn't exist, available properties are '{}'.",
                        available.join(", ")
                    )
                })
            }
            Expr::Index(target, index) => {
                let target = self.eval(target)?;
                let index = self.eval(index)?;
                match (&target, &index) {
                    (Value::Array(items), Value::Number(n)) => items
                        .get(n.as_u64().unwrap() as usize)
                        .cloned()
                        .ok_or_else(|| format!("index {n} out of range of {target}")),
                    (Value::Object(map), Value::String(key)) => map
                        .get(key)
                        .cloned()
                        .ok_or_else(|| format!("no property {key} in {target}")),
                    _ => Err(format!("cannot index {target} with {index}")),
                }
            }
            Expr::Call(function, args) => self.call(function, args),
        }
    }

    fn call(&self, function: &str, args: &[Expr]) -> Result<Value, String> {
        let function = function.to_ascii_lowercase();
        // `if` is lazy: only the branch taken is evaluated.
        if function == "if" {
            let condition = self.eval(&args[0])?;
            let branch = if truthy(&condition)? {
                &args[1]
            } else {
                &args[2]
            };
            return self.eval(branch);
        }
        let values = args
            .iter()
            .map(|a| self.eval(a))
            .collect::<Result<Vec<_>, _>>()?;
        let text = |i: usize| -> Result<String, String> {
            values[i]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{function}: argument {i} is not a string: {}", values[i]))
        };
        match function.as_str() {
            "parameters" => {
                let name = text(0)?;
                match self.parameters.get(&name) {
                    Some(v) => Ok(v.clone()),
                    None => {
                        let declared = &self.template["parameters"][&name];
                        let default = declared
                            .get("defaultValue")
                            .ok_or_else(|| format!("parameter {name} has no value"))?;
                        self.value(default)
                    }
                }
            }
            "variables" => {
                let name = text(0)?;
                let declared = self.template["variables"]
                    .get(&name)
                    .ok_or_else(|| format!("variable {name} is not declared"))?;
                self.value(declared)
            }
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "not" => Ok(Value::Bool(!truthy(&values[0])?)),
            "and" => Ok(Value::Bool(
                values
                    .iter()
                    .map(truthy)
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .all(|b| *b),
            )),
            "or" => Ok(Value::Bool(
                values
                    .iter()
                    .map(truthy)
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .any(|b| *b),
            )),
            "equals" => Ok(Value::Bool(values[0] == values[1])),
            "empty" => Ok(Value::Bool(match &values[0] {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                other => return Err(format!("empty({other})")),
            })),
            "concat" => {
                if values.iter().all(Value::is_array) {
                    Ok(Value::Array(
                        values
                            .iter()
                            .flat_map(|v| v.as_array().unwrap().clone())
                            .collect(),
                    ))
                } else {
                    Ok(Value::String(
                        values.iter().map(plain).collect::<Vec<_>>().join(""),
                    ))
                }
            }
            "format" => {
                let mut out = text(0)?;
                for (i, v) in values.iter().enumerate().skip(1) {
                    out = out.replace(&format!("{{{}}}", i - 1), &plain(v));
                }
                Ok(Value::String(out))
            }
            "string" => Ok(Value::String(plain(&values[0]))),
            "mul" | "div" | "add" | "sub" | "min" | "max" => {
                let int = |i: usize| -> Result<i64, String> {
                    values[i].as_i64().ok_or_else(|| {
                        format!("{function}: argument {i} is not an integer: {}", values[i])
                    })
                };
                let (a, b) = (int(0)?, int(1)?);
                Ok(json!(match function.as_str() {
                    "mul" => a * b,
                    // "Returns the integer division", dividing by zero fails the deployment.
                    "div" if b == 0 => return Err("div: division by zero".into()),
                    "div" => a / b,
                    "add" => a + b,
                    "sub" => a - b,
                    "min" => a.min(b),
                    _ => a.max(b),
                }))
            }
            "startswith" => Ok(Value::Bool(text(0)?.starts_with(&text(1)?))),
            // Deterministic in its arguments, in a GUID's form (ARM hashes them its own way;
            // the form and the determinism are what a deployment relies on).
            "guid" => {
                use sha2::Digest;
                let joined = values.iter().map(plain).collect::<Vec<_>>().join("\u{1f}");
                let hash = sha2::Sha256::digest(joined.as_bytes());
                let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
                Ok(Value::String(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )))
            }
            "tolower" => Ok(Value::String(text(0)?.to_lowercase())),
            "split" => Ok(Value::Array(
                text(0)?
                    .split(text(1)?.as_str())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            )),
            "first" => match &values[0] {
                Value::Array(a) => a.first().cloned().ok_or("first([])".to_owned()),
                Value::String(s) => Ok(Value::String(s.chars().take(1).collect())),
                other => Err(format!("first({other})")),
            },
            "last" => match &values[0] {
                Value::Array(a) => a.last().cloned().ok_or("last([])".to_owned()),
                other => Err(format!("last({other})")),
            },
            "take" => Ok(Value::String(
                text(0)?
                    .chars()
                    .take(values[1].as_u64().unwrap() as usize)
                    .collect(),
            )),
            "replace" => Ok(Value::String(text(0)?.replace(&text(1)?, &text(2)?))),
            "createarray" => Ok(Value::Array(values)),
            "union" => union(&values),
            "json" => serde_json::from_str(&text(0)?).map_err(|e| format!("json(): {e}")),
            "environment" => Ok(self.environment.clone()),
            "uniquestring" => Ok(Value::String("tok3n".into())),
            "resourcegroup" => Ok(json!({"id": "/rg", "location": "here", "name": "rg"})),
            // GUIDs, as the schemas require of tenant ids.
            "subscription" => Ok(json!({
                "tenantId": "00000000-0000-0000-0000-0000000007e4",
                "subscriptionId": "00000000-0000-0000-0000-000000005ab5"
            })),
            "resourceid" | "subscriptionresourceid" => Ok(Value::String(
                values.iter().map(plain).collect::<Vec<_>>().join("/"),
            )),
            "reference" => {
                let id = text(0)?;
                self.references
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("reference({id}): the test gave no properties for it"))
            }
            other => Err(format!("the evaluator does not know {other}()")),
        }
    }
}

/// `union` of objects: every property of each, a later value winning, nested objects merged
/// ("Object functions for ARM templates", union); of arrays: each element once, in order.
fn union(values: &[Value]) -> Result<Value, String> {
    fn merge(into: &mut serde_json::Map<String, Value>, from: &serde_json::Map<String, Value>) {
        for (key, value) in from {
            match (into.get_mut(key), value) {
                (Some(Value::Object(inner)), Value::Object(more)) => merge(inner, more),
                _ => {
                    into.insert(key.clone(), value.clone());
                }
            }
        }
    }
    if values.iter().all(Value::is_object) {
        let mut out = serde_json::Map::new();
        for value in values {
            merge(&mut out, value.as_object().unwrap());
        }
        Ok(Value::Object(out))
    } else if values.iter().all(Value::is_array) {
        let mut out: Vec<Value> = Vec::new();
        for item in values.iter().flat_map(|v| v.as_array().unwrap()) {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        Ok(Value::Array(out))
    } else {
        Err(format!("union of mixed kinds: {values:?}"))
    }
}

fn truthy(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("{v} is not a bool"))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `environment()` in Azure's public cloud (Microsoft Learn, "Deployment functions for ARM
/// templates", environment example), the suffixes the template may use.
pub fn public_cloud() -> Value {
    json!({
        "name": "AzureCloud",
        "suffixes": {
            "keyvaultDns": ".vault.azure.net",
            "sqlServerHostname": ".database.windows.net",
            "storage": "core.windows.net"
        }
    })
}

/// `environment()` in Azure operated by 21Vianet (China).
pub fn china_cloud() -> Value {
    json!({
        "name": "AzureChinaCloud",
        "suffixes": {
            "keyvaultDns": ".vault.azure.cn",
            "sqlServerHostname": ".database.chinacloudapi.cn",
            "storage": "core.chinacloudapi.cn"
        }
    })
}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at {} in {}",
                byte as char,
                self.at,
                String::from_utf8_lossy(self.text)
            ))
        }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.at += 1;
                    let name = self.identifier()?;
                    expr = Expr::Property(Box::new(expr), name);
                }
                Some(b'[') => {
                    self.at += 1;
                    let index = self.expression()?;
                    self.expect(b']')?;
                    expr = Expr::Index(Box::new(expr), Box::new(index));
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(b'\'') => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    let Some(&c) = self.text.get(self.at) else {
                        return Err("unterminated string".into());
                    };
                    self.at += 1;
                    if c == b'\'' {
                        if self.text.get(self.at) == Some(&b'\'') {
                            out.push(b'\'');
                            self.at += 1;
                        } else {
                            break;
                        }
                    } else {
                        out.push(c);
                    }
                }
                Ok(Expr::Str(String::from_utf8(out).unwrap()))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.at;
                self.at += 1;
                while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.at]).unwrap();
                Ok(Expr::Int(
                    digits.parse().map_err(|e| format!("{digits}: {e}"))?,
                ))
            }
            _ => {
                let name = self.identifier()?;
                self.expect(b'(')?;
                let mut args = Vec::new();
                if self.peek() == Some(b')') {
                    self.at += 1;
                } else {
                    loop {
                        args.push(self.expression()?);
                        match self.peek() {
                            Some(b',') => self.at += 1,
                            Some(b')') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(format!("bad argument list at {}", self.at)),
                        }
                    }
                }
                Ok(Expr::Call(name, args))
            }
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        self.skip_space();
        let start = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.at += 1;
        }
        if start == self.at {
            return Err(format!(
                "expected a name at {} in {}",
                self.at,
                String::from_utf8_lossy(self.text)
            ));
        }
        Ok(String::from_utf8(self.text[start..self.at].to_vec()).unwrap())
    }
}

#[test]
fn the_evaluator_follows_arm_semantics_for_what_the_template_uses() {
    let template = json!({
        "parameters": {"flag": {"type": "bool", "defaultValue": false}, "name": {"type": "string", "defaultValue": "[format('a-{0}', 'b')]"}},
        "variables": {"host": "[split(split('https://ns.servicebus.windows.net:443/', '/')[2], ':')[0]]"}
    });
    let d = Deployment::new(&template, json!({}));
    let v = |text: &str| d.value(&json!(text));
    assert_eq!(v("[parameters('name')]").unwrap(), "a-b");
    assert_eq!(
        v("[variables('host')]").unwrap(),
        "ns.servicebus.windows.net"
    );
    assert_eq!(
        v("[if(parameters('flag'), json('{}').missing, 'lazy')]").unwrap(),
        "lazy"
    );
    let refused =
        v("[if(not(parameters('flag')), json('{\"why\": 1}').missing, 'x')]").unwrap_err();
    assert!(
        refused.contains("available properties are 'why'"),
        "{refused}"
    );
    assert_eq!(v("[concat('it''s', string(2))]").unwrap(), "it's2");
    assert!(v("[unknownFunction()]").is_err());
    assert_eq!(
        v("[union(json('{\"a\": 1, \"n\": {\"x\": 1}}'), json('{\"b\": 2, \"n\": {\"y\": 2}}'))]")
            .unwrap(),
        json!({"a": 1, "b": 2, "n": {"x": 1, "y": 2}})
    );
    assert_eq!(
        v("[union(createArray(1, 2), createArray(2, 3))]").unwrap(),
        json!([1, 2, 3])
    );
    assert_eq!(v("[div(mul(2500, 8), 310)]").unwrap(), json!(64));
    let guid = v("[guid('a', 'b')]").unwrap();
    assert_eq!(guid, v("[guid('a', 'b')]").unwrap(), "deterministic");
    assert_ne!(guid, v("[guid('a', 'c')]").unwrap());
    assert_eq!(guid.as_str().unwrap().len(), 36);
    assert!(v("[div(1, 0)]").is_err());
    assert_eq!(
        v("[startsWith('sqlite:/tmp/x.db', 'sqlite:')]").unwrap(),
        json!(true)
    );
    assert_eq!(
        d.value(&json!({"nested": ["[parameters('name')]", {"deep": "[json('0.5')]"}]}))
            .unwrap(),
        json!({"nested": ["a-b", {"deep": 0.5}]}),
        "expressions inside objects and arrays are evaluated"
    );
}
