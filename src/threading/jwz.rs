//! RFC 5256 THREAD=REFERENCES (Jamie Zawinski's algorithm) and THREAD=ORDEREDSUBJECT over
//! message summaries.
//!
//! This module owns the conformance-grade threader: given Message-ID, References, subject
//! and date of every message in a set, it builds the same forest an IMAP server (Dovecot)
//! would, and renders it in the IMAP `(3 2)(1)` form. It does no I/O and never decides
//! which *ticket* a message belongs to; that is the pipeline's job.
//!
//! Hostile input must not hurt: reference cycles are broken as RFC 5256 says (a link that
//! would close a loop is not made), duplicate Message-IDs are treated as unique messages,
//! every walk is iterative (no recursion, so a 100 000-deep chain cannot overflow the
//! stack), and a final check guarantees that every input message appears exactly once in
//! the result.

use std::collections::HashMap;

use crate::threading::subject::rfc5256_base_subject_ext;

/// What the threader needs to know about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    /// Message-ID without angle brackets (as mail-parser returns it); `None` when missing.
    pub message_id: Option<String>,
    /// Parent chain, oldest first: the References ids, or when there are none the first
    /// In-Reply-To id (RFC 5256 section 2.2 step 1). [`reference_chain`] builds it.
    pub references: Vec<String>,
    /// Decoded subject.
    pub subject: String,
    /// Sent date in unix seconds (the INTERNALDATE when Date is missing), for sorting.
    pub date: i64,
    /// Message sequence number, the identity used in the output.
    pub seq: u32,
}

/// One node of a thread forest: a message, or a dummy (`seq == None`) standing for a
/// message that is referenced but not present. `children` are indexes into
/// [`ThreadForest::nodes`], sorted by date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNode {
    pub seq: Option<u32>,
    pub children: Vec<usize>,
}

/// A thread forest in an arena (so dropping or walking a very deep thread needs no
/// recursion). Roots are sorted by date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadForest {
    nodes: Vec<ThreadNode>,
    roots: Vec<usize>,
}

impl ThreadForest {
    /// Indexes of the root nodes, in thread order.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// All nodes; `ThreadNode::children` and `roots()` index into this.
    pub fn nodes(&self) -> &[ThreadNode] {
        &self.nodes
    }

    /// The node at `index`, if any.
    pub fn find_node(&self, index: usize) -> Option<&ThreadNode> {
        self.nodes.get(index)
    }

    /// Depth-first walk: `(depth, seq)` for every reachable node, parents before children,
    /// roots at depth 0, dummies as `None`.
    pub fn list_preorder(&self) -> Vec<(usize, Option<u32>)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&r| (r, 0)).collect();
        while let Some((index, depth)) = stack.pop() {
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            out.push((depth, node.seq));
            stack.extend(node.children.iter().rev().map(|&c| (c, depth + 1)));
        }
        out
    }

    /// The IMAP THREAD response body (RFC 5256 section 4, `thread-list`), for example
    /// `(3 2)(1)` or `(1 (2 4)(3))`; a dummy root renders as `((1)(2))`.
    pub fn render_imap(&self) -> String {
        enum Task<'a> {
            Members(usize),
            Text(&'a str),
        }
        let mut out = String::new();
        let mut stack: Vec<Task<'_>> = Vec::new();
        for &root in self.roots.iter().rev() {
            stack.extend([Task::Text(")"), Task::Members(root), Task::Text("(")]);
        }
        while let Some(task) = stack.pop() {
            let index = match task {
                Task::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Task::Members(index) => index,
            };
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            if let Some(seq) = node.seq {
                out.push_str(&seq.to_string());
                match node.children.as_slice() {
                    [] => continue,
                    [only] => {
                        // A single child continues the chain: "3 2".
                        stack.extend([Task::Members(*only), Task::Text(" ")]);
                        continue;
                    }
                    _ => out.push(' '),
                }
            }
            // Several children (or any child of a dummy) are nested lists: "(2 4)(3)".
            for &child in node.children.iter().rev() {
                stack.extend([Task::Text(")"), Task::Members(child), Task::Text("(")]);
            }
        }
        out
    }
}

/// The reference chain RFC 5256 section 2.2 step 1 uses: the References ids if there are
/// any, otherwise the first In-Reply-To id. Empty ids are ignored.
pub fn reference_chain(references: &[&str], in_reply_to: &[&str]) -> Vec<String> {
    let refs: Vec<String> = references
        .iter()
        .filter(|id| !id.is_empty())
        .map(|id| (*id).to_string())
        .collect();
    if !refs.is_empty() {
        return refs;
    }
    in_reply_to
        .iter()
        .find(|id| !id.is_empty())
        .map(|id| vec![(*id).to_string()])
        .unwrap_or_default()
}

/// One container of the JWZ algorithm: a message (index into the input) or a dummy.
#[derive(Debug, Default)]
struct Container {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// Per-message facts the algorithm keeps looking at.
struct Facts {
    /// Base subject, ASCII upper-cased: RFC 5256 compares with i;ascii-casemap.
    subject_key: String,
    is_reply: bool,
    date: i64,
    seq: u32,
}

fn facts_of(messages: &[ThreadMessage]) -> Vec<Facts> {
    messages
        .iter()
        .map(|m| {
            let (base, is_reply) = rfc5256_base_subject_ext(&m.subject);
            Facts {
                subject_key: base.to_ascii_uppercase(),
                is_reply,
                date: m.date,
                seq: m.seq,
            }
        })
        .collect()
}

struct Threader<'a> {
    facts: &'a [Facts],
    containers: Vec<Container>,
}

impl Threader<'_> {
    fn new_container(&mut self, message: Option<usize>) -> usize {
        self.containers.push(Container {
            message,
            ..Container::default()
        });
        self.containers.len() - 1
    }

    fn parent_of(&self, c: usize) -> Option<usize> {
        self.containers.get(c).and_then(|c| c.parent)
    }

    fn is_dummy(&self, c: usize) -> bool {
        self.containers.get(c).is_none_or(|c| c.message.is_none())
    }

    fn facts(&self, c: usize) -> Option<&Facts> {
        let message = self.containers.get(c)?.message?;
        self.facts.get(message)
    }

    /// Would making `parent` the parent of `child` close a loop? True when `parent` is
    /// `child` or one of its descendants (RFC 5256 step 1.B). Two walks run in lock step,
    /// up from `parent` and down through `child`'s subtree, and the first one to finish
    /// answers, so linking a new reply under a deep thread costs O(1), not O(depth).
    fn would_loop(&self, parent: usize, child: usize) -> bool {
        if parent == child {
            return true;
        }
        let mut up = self.parent_of(parent);
        let mut down = vec![child];
        // The tree is kept acyclic, so both walks end; the limit guards against our bugs.
        for _ in 0..=self.containers.len() {
            match up {
                Some(c) if c == child => return true,
                Some(c) => up = self.parent_of(c),
                None => return false,
            }
            match down.pop() {
                Some(d) if d == parent => return true,
                Some(d) => {
                    if let Some(container) = self.containers.get(d) {
                        down.extend(&container.children);
                    }
                }
                None => return false,
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        let Some(parent) = self.parent_of(child) else {
            return;
        };
        if let Some(p) = self.containers.get_mut(parent) {
            p.children.retain(|&c| c != child);
        }
        if let Some(c) = self.containers.get_mut(child) {
            c.parent = None;
        }
    }

    /// Links `child` under `parent` unless that would close a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if self.would_loop(parent, child) {
            return;
        }
        self.unlink(child);
        if let Some(p) = self.containers.get_mut(parent) {
            p.children.push(child);
        }
        if let Some(c) = self.containers.get_mut(child) {
            c.parent = Some(parent);
        }
    }

    /// Sort key of a container: its message's (date, seq), or for a dummy the key of its
    /// earliest child.
    fn sort_key(&self, c: usize, keys: &[Option<(i64, u32)>]) -> (i64, u32) {
        if let Some(f) = self.facts(c) {
            return (f.date, f.seq);
        }
        keys.get(c)
            .copied()
            .flatten()
            .unwrap_or((i64::MAX, u32::MAX))
    }

    /// Containers reachable from `roots`, parents before children.
    fn preorder(&self, roots: &[usize]) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.containers.len());
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        while let Some(c) = stack.pop() {
            order.push(c);
            if let Some(container) = self.containers.get(c) {
                stack.extend(container.children.iter().rev());
            }
        }
        order
    }

    /// RFC 5256 step 4: drop empty dummies, splice non-root dummies' children into their
    /// parent, and promote a root dummy's only child. Children are pruned before parents,
    /// so spliced-in children are already clean.
    fn prune(&mut self, roots: &[usize]) -> Vec<usize> {
        let order = self.preorder(roots);
        for &c in order.iter().rev() {
            let children = self
                .containers
                .get_mut(c)
                .map(|c| std::mem::take(&mut c.children))
                .unwrap_or_default();
            let mut kept = Vec::with_capacity(children.len());
            for child in children {
                if self.is_dummy(child) {
                    let grandchildren = self
                        .containers
                        .get_mut(child)
                        .map(|g| std::mem::take(&mut g.children))
                        .unwrap_or_default();
                    kept.extend(grandchildren);
                } else {
                    kept.push(child);
                }
            }
            for &k in &kept {
                if let Some(k) = self.containers.get_mut(k) {
                    k.parent = Some(c);
                }
            }
            if let Some(container) = self.containers.get_mut(c) {
                container.children = kept;
            }
        }
        let mut new_roots = Vec::with_capacity(roots.len());
        for &r in roots {
            if !self.is_dummy(r) {
                new_roots.push(r);
                continue;
            }
            let children = self
                .containers
                .get(r)
                .map(|c| c.children.clone())
                .unwrap_or_default();
            match children.as_slice() {
                [] => {}
                [only] => {
                    if let Some(o) = self.containers.get_mut(*only) {
                        o.parent = None;
                    }
                    new_roots.push(*only);
                }
                _ => new_roots.push(r),
            }
        }
        new_roots
    }

    /// The thread subject of a root (step 5.B.i): its message's base subject, or for a
    /// dummy that of its earliest child. RFC 5256 says "first child" before the children
    /// are sorted; we take the earliest so the answer does not depend on link order.
    fn thread_subject(&self, c: usize) -> Option<&str> {
        if let Some(f) = self.facts(c) {
            return Some(&f.subject_key);
        }
        let children = &self.containers.get(c)?.children;
        let first = children
            .iter()
            .filter_map(|&ch| self.facts(ch))
            .min_by_key(|f| (f.date, f.seq))?;
        Some(&first.subject_key)
    }

    fn is_reply(&self, c: usize) -> bool {
        self.facts(c).is_some_and(|f| f.is_reply)
    }

    /// RFC 5256 step 5: gather roots with the same base subject.
    fn group_by_subject(&mut self, roots: Vec<usize>) -> Vec<usize> {
        // 5.B: one container per thread subject, preferring dummies, then non-replies.
        let mut table: HashMap<String, usize> = HashMap::new();
        for &r in &roots {
            let Some(subject) = self.thread_subject(r).filter(|s| !s.is_empty()) else {
                continue;
            };
            match table.get(subject) {
                None => {
                    table.insert(subject.to_string(), r);
                }
                Some(&t) => {
                    let replace = !self.is_dummy(t)
                        && (self.is_dummy(r) || (self.is_reply(t) && !self.is_reply(r)));
                    if replace {
                        table.insert(subject.to_string(), r);
                    }
                }
            }
        }
        // 5.C: merge. `slot` maps a root to its position so a new dummy can take its place.
        let mut result: Vec<Option<usize>> = roots.iter().copied().map(Some).collect();
        let slot: HashMap<usize, usize> = roots.iter().enumerate().map(|(i, &r)| (r, i)).collect();
        for &r in &roots {
            let Some(subject) = self
                .thread_subject(r)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
            else {
                continue;
            };
            let Some(&t) = table.get(&subject) else {
                continue;
            };
            if t == r {
                continue;
            }
            if let Some(entry) = slot.get(&r).and_then(|&i| result.get_mut(i)) {
                *entry = None;
            }
            if self.is_dummy(t) && self.is_dummy(r) {
                let children = self
                    .containers
                    .get_mut(r)
                    .map(|c| std::mem::take(&mut c.children))
                    .unwrap_or_default();
                for child in children {
                    if let Some(c) = self.containers.get_mut(child) {
                        c.parent = None;
                    }
                    self.link(t, child);
                }
            } else if self.is_dummy(t) || (self.is_reply(r) && !self.is_reply(t)) {
                self.link(t, r);
            } else {
                let dummy = self.new_container(None);
                self.link(dummy, t);
                self.link(dummy, r);
                // `t` is still a root here: only dummies are ever put in its place.
                match slot.get(&t).and_then(|&i| result.get_mut(i)) {
                    Some(entry) => *entry = Some(dummy),
                    None => result.push(Some(dummy)),
                }
                table.insert(subject, dummy);
            }
        }
        result.into_iter().flatten().collect()
    }

    /// RFC 5256 step 6: sort every child list, and the roots, by sent date (ties: sequence
    /// number); a dummy sorts as its earliest child.
    fn sort(&mut self, roots: &mut [usize]) {
        let order = self.preorder(roots);
        let mut keys: Vec<Option<(i64, u32)>> = vec![None; self.containers.len()];
        for &c in order.iter().rev() {
            let mut children = self
                .containers
                .get_mut(c)
                .map(|c| std::mem::take(&mut c.children))
                .unwrap_or_default();
            children.sort_by_key(|&ch| self.sort_key(ch, &keys));
            let first_key = children.first().map(|&ch| self.sort_key(ch, &keys));
            if let Some(container) = self.containers.get_mut(c) {
                container.children = children;
            }
            let key = match self.facts(c) {
                Some(f) => Some((f.date, f.seq)),
                None => first_key,
            };
            if let Some(slot) = keys.get_mut(c) {
                *slot = key;
            }
        }
        roots.sort_by_key(|&r| self.sort_key(r, &keys));
    }

    /// Copies the container tree into the output arena.
    fn into_forest(self, roots: &[usize]) -> ThreadForest {
        let mut forest = ThreadForest::default();
        let mut index_of: HashMap<usize, usize> = HashMap::new();
        for c in self.preorder(roots) {
            index_of.insert(c, forest.nodes.len());
            let seq = self.facts(c).map(|f| f.seq);
            forest.nodes.push(ThreadNode {
                seq,
                children: Vec::new(),
            });
        }
        for (&c, &node) in &index_of {
            let children: Vec<usize> = self
                .containers
                .get(c)
                .map(|c| {
                    c.children
                        .iter()
                        .filter_map(|ch| index_of.get(ch).copied())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(n) = forest.nodes.get_mut(node) {
                n.children = children;
            }
        }
        forest.roots = roots
            .iter()
            .filter_map(|r| index_of.get(r).copied())
            .collect();
        forest
    }
}

/// Appends every input message missing from `forest` as its own root. The algorithms
/// above keep every message; this makes "a ticketing daemon never loses a message" hold
/// even if they had a bug.
fn ensure_every_message(forest: &mut ThreadForest, facts: &[Facts]) {
    let mut present: HashMap<u32, usize> = HashMap::new();
    for node in &forest.nodes {
        if let Some(seq) = node.seq {
            *present.entry(seq).or_default() += 1;
        }
    }
    for f in facts {
        match present.get_mut(&f.seq) {
            Some(count) if *count > 0 => *count -= 1,
            _ => {
                forest.roots.push(forest.nodes.len());
                forest.nodes.push(ThreadNode {
                    seq: Some(f.seq),
                    children: Vec::new(),
                });
            }
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 section 2.2, JWZ): parent/child links from References,
/// loop breaking, dummy pruning, grouping of roots by base subject, date order.
pub fn thread_references(messages: &[ThreadMessage]) -> ThreadForest {
    let facts = facts_of(messages);
    let mut threader = Threader {
        facts: &facts,
        containers: Vec::with_capacity(messages.len()),
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        // 1.A: the container for this Message-ID; a missing or duplicate ID gets a fresh
        // container of its own, as if the message had a unique ID.
        let id = message.message_id.as_deref().filter(|id| !id.is_empty());
        let this = match id.map(|id| (id, by_id.get(id).copied())) {
            Some((_, Some(c))) if threader.is_dummy(c) => {
                if let Some(container) = threader.containers.get_mut(c) {
                    container.message = Some(index);
                }
                c
            }
            Some((id, None)) => {
                let c = threader.new_container(Some(index));
                by_id.insert(id, c);
                c
            }
            _ => threader.new_container(Some(index)),
        };
        // 1.B: link the references in order, keeping existing parents and never closing
        // a loop.
        let mut refs = Vec::with_capacity(message.references.len());
        for reference in message.references.iter().filter(|r| !r.is_empty()) {
            let c = match by_id.get(reference.as_str()) {
                Some(&c) => c,
                None => {
                    let c = threader.new_container(None);
                    by_id.insert(reference, c);
                    c
                }
            };
            refs.push(c);
        }
        for pair in refs.windows(2) {
            if let [parent, child] = *pair
                && threader.parent_of(child).is_none()
            {
                threader.link(parent, child);
            }
        }
        // 1.C: the last reference is the parent; whatever parent an earlier References
        // list guessed is dropped, even when the new link would loop (then the message
        // becomes a root, which is what Dovecot's "thread" test expects).
        threader.unlink(this);
        if let Some(&parent) = refs.last() {
            threader.link(parent, this);
        }
    }
    // 2-3: the root set.
    let roots: Vec<usize> = (0..threader.containers.len())
        .filter(|&c| threader.parent_of(c).is_none())
        .collect();
    let roots = threader.prune(&roots);
    let mut roots = threader.group_by_subject(roots);
    threader.sort(&mut roots);
    let mut forest = threader.into_forest(&roots);
    ensure_every_message(&mut forest, &facts);
    forest
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 section 2.2): messages sorted by base subject, then
/// date; each run of equal base subjects is one thread whose first message is the parent
/// of all the others; threads sorted by the date of their first message.
pub fn thread_ordered_subject(messages: &[ThreadMessage]) -> ThreadForest {
    let facts = facts_of(messages);
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| facts.get(i).map(|f| (&f.subject_key, f.date, f.seq));
        key(a).cmp(&key(b))
    });
    let mut forest = ThreadForest::default();
    // Roots with their (date, seq), the order threads are listed in.
    let mut roots: Vec<((i64, u32), usize)> = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    for i in order {
        let Some(f) = facts.get(i) else {
            continue;
        };
        let node = forest.nodes.len();
        forest.nodes.push(ThreadNode {
            seq: Some(f.seq),
            children: Vec::new(),
        });
        match current {
            Some((subject, parent)) if subject == f.subject_key => {
                if let Some(p) = forest.nodes.get_mut(parent) {
                    p.children.push(node);
                }
            }
            _ => {
                roots.push(((f.date, f.seq), node));
                current = Some((&f.subject_key, node));
            }
        }
    }
    roots.sort_unstable();
    forest.roots = roots.into_iter().map(|(_, node)| node).collect();
    forest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u32, id: Option<&str>, refs: &[&str], subject: &str, date: i64) -> ThreadMessage {
        ThreadMessage {
            message_id: id.map(str::to_string),
            references: refs.iter().map(|r| r.to_string()).collect(),
            subject: subject.to_string(),
            date,
            seq,
        }
    }

    fn seqs(forest: &ThreadForest) -> Vec<u32> {
        let mut s: Vec<u32> = forest
            .list_preorder()
            .into_iter()
            .filter_map(|(_, s)| s)
            .collect();
        s.sort_unstable();
        s
    }

    #[test]
    fn simple_chain_and_siblings() {
        let m = [
            msg(1, Some("a"), &[], "hello", 10),
            msg(2, Some("b"), &["a"], "Re: hello", 20),
            msg(3, Some("c"), &["a"], "Re: hello", 30),
            msg(4, Some("d"), &["a", "b"], "Re: hello", 40),
        ];
        assert_eq!(thread_references(&m).render_imap(), "(1 (2 4)(3))");
    }

    #[test]
    fn loop_in_references_breaks_and_keeps_everyone() {
        // Dovecot's "thread" script: c's parent would be its own child b.
        let m = [
            msg(1, Some("a"), &[], "", 300),
            msg(2, Some("b"), &["a", "c"], "", 100),
            msg(3, Some("c"), &["b"], "", 200),
        ];
        assert_eq!(thread_references(&m).render_imap(), "(3 2)(1)");
    }

    #[test]
    fn self_reference_and_two_cycle() {
        let m = [
            msg(1, Some("x"), &["x"], "", 0),
            msg(2, Some("p"), &["q"], "", 0),
            msg(3, Some("q"), &["p"], "", 0),
        ];
        let forest = thread_references(&m);
        assert_eq!(forest.render_imap(), "(1)(3 2)");
        assert_eq!(seqs(&forest), vec![1, 2, 3]);
    }

    #[test]
    fn long_cycles_never_hang_or_lose_messages() {
        let n = 50u32;
        let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let m: Vec<ThreadMessage> = (0..n)
            .map(|i| {
                let refs: Vec<&str> = (1..n)
                    .map(|k| ids[((i + k) % n) as usize].as_str())
                    .collect();
                msg(i + 1, Some(&ids[i as usize]), &refs, "loop", 0)
            })
            .collect();
        let forest = thread_references(&m);
        assert_eq!(seqs(&forest), (1..=n).collect::<Vec<_>>());
    }

    #[test]
    fn duplicate_message_ids_are_separate_messages() {
        let m = [msg(1, Some("a"), &[], "", 0), msg(2, Some("a"), &[], "", 0)];
        assert_eq!(thread_references(&m).render_imap(), "(1)(2)");
        let m = [
            msg(1, Some("a"), &[], "foo", 0),
            msg(2, Some("a"), &[], "Re: foo", 1),
        ];
        assert_eq!(thread_references(&m).render_imap(), "(1 2)");
    }

    #[test]
    fn dummy_root_with_two_children_stays() {
        let m = [msg(1, None, &["a"], "", 0), msg(2, None, &["a"], "", 1)];
        assert_eq!(thread_references(&m).render_imap(), "((1)(2))");
    }

    #[test]
    fn subject_grouping() {
        let m = [
            msg(1, Some("a"), &[], "same", 0),
            msg(2, Some("b"), &[], "same", 1),
            msg(3, Some("c"), &[], "Re: other", 2),
            msg(4, Some("d"), &[], "other", 3),
            msg(5, Some("e"), &[], "", 4),
            msg(6, Some("f"), &[], "", 5),
        ];
        assert_eq!(
            thread_references(&m).render_imap(),
            "((1)(2))(4 3)(5)(6)",
            "non-reply 'other' becomes the parent of its reply; empty subjects never group"
        );
    }

    #[test]
    fn deep_chain_is_iterative() {
        let n = 100_000u32;
        let m: Vec<ThreadMessage> = (0..n)
            .map(|i| {
                let parent = format!("m{}", i.saturating_sub(1));
                let refs: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![parent.as_str()]
                };
                msg(i + 1, Some(&format!("m{i}")), &refs, "", i64::from(i))
            })
            .collect();
        let forest = thread_references(&m);
        assert_eq!(forest.roots().len(), 1);
        assert_eq!(forest.list_preorder().len(), n as usize);
        assert!(forest.render_imap().starts_with("(1 2 3 "));
    }

    #[test]
    fn ordered_subject() {
        let m = [
            msg(1, None, &[], "a", 10),
            msg(2, None, &[], "b", 9),
            msg(3, None, &[], "Re: a", 8),
            msg(4, None, &[], "B", 7),
            msg(5, None, &[], "", 1),
        ];
        assert_eq!(thread_ordered_subject(&m).render_imap(), "(5)(4 2)(3 1)");
    }

    #[test]
    fn reference_chain_prefers_references() {
        assert_eq!(reference_chain(&["a", "b"], &["c"]), vec!["a", "b"]);
        assert_eq!(reference_chain(&[], &["c", "d"]), vec!["c"]);
        assert_eq!(reference_chain(&[""], &[""]), Vec::<String>::new());
    }

    #[test]
    fn empty_input() {
        assert_eq!(thread_references(&[]).render_imap(), "");
        assert_eq!(thread_ordered_subject(&[]).render_imap(), "");
    }
}
