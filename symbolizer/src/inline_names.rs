//! Qualified names of inlined functions, rebuilt from the DWARF tree around their DIE.
//!
//! GCC gives a template instance that is only ever inlined (`std::generate_n<…>`) and a
//! lambda's `operator()` no `DW_AT_linkage_name`, so addr2line (like perf) only knows their
//! bare `DW_AT_name`: `generate_n<…, long unsigned int, …>` or `operator()`. This module
//! names them as the demangler names the same function where it is not inlined: scopes from
//! the DIE's parents (namespaces, classes, the function around a lambda), template arguments
//! from its `DW_TAG_template_*_param` children, spelled as GNU's demangler spells types.
//! Whatever cannot be spelled that way keeps GCC's own spelling (still a true name). Only C++
//! units are renamed: other languages keep the names addr2line gives.
//!
//! Hand-written: no crate formats DWARF types in the demangler's spelling.

use std::sync::{Arc, Mutex};

use gimli::{AttributeValue, DebuggingInformationEntry, DwTag, UnitOffset, UnitRef};
use rustc_hash::FxHashMap as HashMap;

use crate::demangle::{demangle, demangle_with_params};
use crate::units::Reader;

/// How many references (`abstract_origin`, `specification`, types, parents) one name may
/// follow: a corrupt or cyclic tree ends here instead of looping.
const MAX_STEPS: usize = 64;

/// DIEs of one unit that can be a scope or a named function, in offset (= tree) order.
#[derive(Default)]
struct UnitScopes {
    entries: Vec<ScopeEntry>,
    /// Whether the unit is C++: only C++ names are rebuilt (Rust's have their own spelling).
    cxx: bool,
}

#[derive(Clone, Copy)]
struct ScopeEntry {
    offset: usize,
    parent: Option<usize>,
    tag: DwTag,
    /// For a class: the nearest subprogram around it (a lambda's closure type is numbered
    /// among those of the same function).
    function: Option<usize>,
}

impl UnitScopes {
    /// One pass over the unit's tree; none past its root when the unit is not C++ (its names
    /// are never rebuilt): the pass over every DIE of each C unit of libc's debug file was a
    /// third of the inline-frame lookups on a machine-wide recording (issue #13 point 1).
    fn build(unit: UnitRef<'_, Reader>) -> Self {
        let mut entries = Vec::new();
        // (depth, offset, is a subprogram) of the open DIEs that have children.
        let mut open: Vec<(isize, usize, bool)> = Vec::new();
        let mut cxx = false;
        let mut cursor = unit.entries();
        while let Ok(Some(die)) = cursor.next_dfs() {
            let depth = die.depth();
            if tag_is_unit(die.tag()) {
                cxx |= is_cxx(die);
            }
            if !cxx {
                // The root says the language, and comes first.
                break;
            }
            while open.last().is_some_and(|&(d, _, _)| d >= depth) {
                open.pop();
            }
            let offset = die.offset().0;
            let tag = die.tag();
            if is_scope_tag(tag) {
                let function = if is_class_tag(tag) {
                    open.iter().rev().find(|e| e.2).map(|e| e.1)
                } else {
                    None
                };
                entries.push(ScopeEntry {
                    offset,
                    parent: open.last().map(|e| e.1),
                    tag,
                    function,
                });
            }
            if die.has_children() {
                open.push((depth, offset, tag == gimli::DW_TAG_subprogram));
            }
        }
        Self { entries, cxx }
    }

    fn get(&self, offset: usize) -> Option<ScopeEntry> {
        let i = self
            .entries
            .binary_search_by_key(&offset, |e| e.offset)
            .ok()?;
        self.entries.get(i).copied()
    }
}

/// Whether a unit's root DIE says the unit is C++.
fn is_cxx(root: &DebuggingInformationEntry<Reader>) -> bool {
    matches!(
        root.attr_value(gimli::DW_AT_language),
        Some(AttributeValue::Language(
            gimli::DW_LANG_C_plus_plus
                | gimli::DW_LANG_C_plus_plus_03
                | gimli::DW_LANG_C_plus_plus_11
                | gimli::DW_LANG_C_plus_plus_14
        ))
    )
}

fn tag_is_unit(tag: DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_compile_unit | gimli::DW_TAG_partial_unit | gimli::DW_TAG_type_unit
    )
}

fn is_class_tag(tag: DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type | gimli::DW_TAG_union_type
    )
}

fn is_scope_tag(tag: DwTag) -> bool {
    is_class_tag(tag)
        || matches!(
            tag,
            gimli::DW_TAG_namespace
                | gimli::DW_TAG_subprogram
                | gimli::DW_TAG_enumeration_type
                | gimli::DW_TAG_lexical_block
        )
}

fn name_of(unit: UnitRef<'_, Reader>, die: &DebuggingInformationEntry<Reader>) -> Option<String> {
    let value = die.attr_value(gimli::DW_AT_name)?;
    let text = unit.attr_string(value).ok()?;
    let text = gimli::Reader::to_string_lossy(&text).ok()?.into_owned();
    Some(text)
}

fn linkage_name_of(
    unit: UnitRef<'_, Reader>,
    die: &DebuggingInformationEntry<Reader>,
) -> Option<String> {
    let value = die
        .attr_value(gimli::DW_AT_linkage_name)
        .or_else(|| die.attr_value(gimli::DW_AT_MIPS_linkage_name))?;
    let text = unit.attr_string(value).ok()?;
    let text = gimli::Reader::to_string_lossy(&text).ok()?.into_owned();
    Some(text)
}

/// A reference within the same unit (references to other units are not followed).
fn unit_ref(die: &DebuggingInformationEntry<Reader>, attr: gimli::DwAt) -> Option<usize> {
    match die.attr_value(attr)? {
        AttributeValue::UnitRef(offset) => Some(offset.0),
        _ => None,
    }
}

/// A function DIE followed through `abstract_origin` and `specification`.
struct Resolved {
    /// The DIE at the end of the chain: the declaration, which sits in the function's scope.
    declaration: usize,
    /// Every DIE of the chain, the given one first.
    chain: Vec<usize>,
    name: Option<String>,
    linkage_name: Option<String>,
}

fn resolve(unit: UnitRef<'_, Reader>, offset: usize) -> Option<Resolved> {
    let mut chain = Vec::new();
    let mut name = None;
    let mut linkage_name = None;
    let mut at = offset;
    loop {
        if chain.len() >= MAX_STEPS || chain.contains(&at) {
            return None;
        }
        chain.push(at);
        let die = unit.entry(UnitOffset(at)).ok()?;
        if linkage_name.is_none() {
            linkage_name = linkage_name_of(unit, &die);
        }
        if name.is_none() {
            name = name_of(unit, &die);
        }
        match unit_ref(&die, gimli::DW_AT_abstract_origin)
            .or_else(|| unit_ref(&die, gimli::DW_AT_specification))
        {
            Some(next) => at = next,
            None => break,
        }
    }
    Some(Resolved {
        declaration: at,
        chain,
        name,
        linkage_name,
    })
}

/// Qualified names of one debug file's functions, computed once per DIE.
#[derive(Default)]
pub(crate) struct InlineNames {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per unit (by its `.debug_info` offset): its scope DIEs.
    scopes: HashMap<usize, Arc<UnitScopes>>,
    /// Per (unit, DIE): the qualified name, `None` when the DIE has a linkage name.
    names: HashMap<(usize, usize), Option<Arc<str>>>,
}

impl InlineNames {
    /// The qualified name of the function whose (inlined or out-of-line) DIE is at `offset`
    /// in `unit`; `None` when it has a linkage name (which the demangler names) or no name.
    pub(crate) fn qualified(
        &self,
        unit: UnitRef<'_, Reader>,
        offset: UnitOffset<usize>,
    ) -> Option<Arc<str>> {
        let unit_key = unit.header.offset().0;
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        if let Some(known) = state.names.get(&(unit_key, offset.0)) {
            return known.clone();
        }
        let scopes = Arc::clone(
            state
                .scopes
                .entry(unit_key)
                .or_insert_with(|| Arc::new(UnitScopes::build(unit))),
        );
        if !scopes.cxx {
            state.names.insert((unit_key, offset.0), None);
            return None;
        }
        let namer = Namer {
            unit,
            scopes: &scopes,
            steps: 0,
        };
        let name = namer.function_name(offset.0).map(Arc::from);
        state.names.insert((unit_key, offset.0), name.clone());
        name
    }
}

struct Namer<'a, 'u> {
    unit: UnitRef<'u, Reader>,
    scopes: &'a UnitScopes,
    steps: usize,
}

impl Namer<'_, '_> {
    fn step(&mut self) -> Option<()> {
        self.steps += 1;
        (self.steps <= MAX_STEPS * 8).then_some(())
    }

    /// The name of a function without a linkage name: its scopes, then its own name.
    fn function_name(mut self, offset: usize) -> Option<String> {
        let resolved = resolve(self.unit, offset)?;
        if resolved.linkage_name.is_some() {
            return None;
        }
        let raw = resolved.name.clone()?;
        let own = self
            .with_template_args(&raw, &resolved.chain)
            .unwrap_or(raw);
        let scope = self.scope_prefix(resolved.declaration).unwrap_or_default();
        Some(scope + &own)
    }

    /// `name` (GCC's spelling, `f<long unsigned int>`) with its template arguments respelled
    /// from the template parameters of the first DIE in `dies` that has any.
    fn with_template_args(&mut self, name: &str, dies: &[usize]) -> Option<String> {
        let base = name.find('<').map_or(name, |i| &name[..i]);
        if base.len() == name.len() || base.is_empty() || base.starts_with("operator") {
            return None;
        }
        for &die in dies.iter().rev() {
            if let Some(args) = self.template_args(die)? {
                return Some(format!("{base}{args}"));
            }
        }
        None
    }

    /// `<A, B>` from the template parameters of `die`; `Some(None)` when it has none, `None`
    /// when one cannot be spelled.
    fn template_args(&mut self, die: usize) -> Option<Option<String>> {
        let mut args = Vec::new();
        let mut any = false;
        for child in self.children(die)? {
            match child.tag() {
                gimli::DW_TAG_template_type_parameter | gimli::DW_TAG_template_value_parameter => {
                    any = true;
                    args.push(self.template_arg(&child)?);
                }
                gimli::DW_TAG_GNU_template_parameter_pack => {
                    any = true;
                    for member in self.children(child.offset().0)? {
                        args.push(self.template_arg(&member)?);
                    }
                }
                gimli::DW_TAG_GNU_template_template_param => return None,
                _ => {}
            }
        }
        if !any {
            return Some(None);
        }
        Some(Some(angle_list(&args)))
    }

    fn template_arg(&mut self, die: &DebuggingInformationEntry<Reader>) -> Option<String> {
        let ty = unit_ref(die, gimli::DW_AT_type);
        match die.tag() {
            // GCC leaves out the type of a `void` argument.
            gimli::DW_TAG_template_type_parameter => match ty {
                Some(ty) => self.type_name(ty),
                None => Some("void".to_string()),
            },
            gimli::DW_TAG_template_value_parameter => {
                let value = die.attr_value(gimli::DW_AT_const_value)?;
                self.value_literal(ty?, &value)
            }
            _ => None,
        }
    }

    /// A template value argument as GNU's demangler prints it (`true`, `3`, `3ul`, `(char)97`).
    fn value_literal(&mut self, ty: usize, value: &AttributeValue<Reader>) -> Option<String> {
        let ty_name = self.type_name(ty)?;
        let number = value
            .sdata_value()
            .or_else(|| value.udata_value().and_then(|u| i64::try_from(u).ok()))?;
        Some(match ty_name.as_str() {
            "bool" => match number {
                0 => "false".to_string(),
                1 => "true".to_string(),
                _ => return None,
            },
            "int" => number.to_string(),
            "unsigned int" => format!("{number}u"),
            "long" => format!("{number}l"),
            "unsigned long" => format!("{number}ul"),
            "long long" => format!("{number}ll"),
            "unsigned long long" => format!("{number}ull"),
            _ => format!("({ty_name}){number}"),
        })
    }

    /// The children of `die` (not grandchildren).
    fn children(&mut self, die: usize) -> Option<Vec<DebuggingInformationEntry<Reader>>> {
        self.step()?;
        let mut cursor = self.unit.entries_at_offset(UnitOffset(die)).ok()?;
        let mut out = Vec::new();
        let first = cursor.next_dfs().ok()??;
        if !first.has_children() {
            return Some(out);
        }
        while let Ok(Some(entry)) = cursor.next_dfs() {
            match entry.depth() {
                1 => out.push(entry.clone()),
                d if d <= 0 => break,
                _ => {}
            }
            if out.len() > 4096 {
                return None;
            }
        }
        Some(out)
    }

    /// A type as GNU's demangler spells it; `None` for types this module does not spell.
    fn type_name(&mut self, offset: usize) -> Option<String> {
        self.step()?;
        let die = self.unit.entry(UnitOffset(offset)).ok()?;
        let inner = unit_ref(&die, gimli::DW_AT_type);
        let inner_or_void = |this: &mut Self| match inner {
            Some(t) => this.type_name(t),
            None => Some("void".to_string()),
        };
        match die.tag() {
            gimli::DW_TAG_base_type => Some(base_type_spelling(&name_of(self.unit, &die)?)),
            gimli::DW_TAG_pointer_type => {
                // A pointer to a function: `void (*)(int)`.
                if let Some(target) = inner
                    && let Ok(pointee) = self.unit.entry(UnitOffset(target))
                    && pointee.tag() == gimli::DW_TAG_subroutine_type
                {
                    let result = match unit_ref(&pointee, gimli::DW_AT_type) {
                        Some(t) => self.type_name(t)?,
                        None => "void".to_string(),
                    };
                    let params = self.parameter_list(target)?;
                    return Some(format!("{result} (*)({params})"));
                }
                Some(inner_or_void(self)? + "*")
            }
            gimli::DW_TAG_reference_type => Some(self.type_name(inner?)? + "&"),
            gimli::DW_TAG_rvalue_reference_type => Some(self.type_name(inner?)? + "&&"),
            gimli::DW_TAG_const_type => Some(inner_or_void(self)? + " const"),
            gimli::DW_TAG_volatile_type => Some(inner_or_void(self)? + " volatile"),
            // `double (int)`, as in `std::function<double (int)>`.
            gimli::DW_TAG_subroutine_type => {
                let result = inner_or_void(self)?;
                let params = self.parameter_list(offset)?;
                Some(format!("{result} ({params})"))
            }
            // Mangled names use the type a typedef stands for.
            gimli::DW_TAG_typedef => self.type_name(inner?),
            tag if is_class_tag(tag) || tag == gimli::DW_TAG_enumeration_type => {
                let entry = self.scopes.get(offset)?;
                let segment = self.class_segment(&entry, &die)?;
                let scope = self.scope_prefix_from(entry.parent)?;
                Some(scope + &segment)
            }
            _ => None,
        }
    }

    /// The `a::b::` in front of the entity declared at `offset`.
    fn scope_prefix(&mut self, offset: usize) -> Option<String> {
        let parent = self.scopes.get(offset).and_then(|e| e.parent);
        self.scope_prefix_from(parent)
    }

    fn scope_prefix_from(&mut self, mut parent: Option<usize>) -> Option<String> {
        let mut segments = Vec::new();
        while let Some(offset) = parent {
            self.step()?;
            let Some(entry) = self.scopes.get(offset) else {
                break; // the compile unit
            };
            parent = entry.parent;
            match entry.tag {
                gimli::DW_TAG_lexical_block => {}
                gimli::DW_TAG_namespace => {
                    let die = self.unit.entry(UnitOffset(offset)).ok()?;
                    segments.push(
                        name_of(self.unit, &die)
                            .unwrap_or_else(|| "(anonymous namespace)".to_string()),
                    );
                }
                gimli::DW_TAG_subprogram => {
                    // A local entity: the demangler prints the function around it with its
                    // parameters and its whole scope, so it ends the walk.
                    segments.push(self.enclosing_function(offset)?);
                    break;
                }
                _ => {
                    let die = self.unit.entry(UnitOffset(offset)).ok()?;
                    segments.push(self.class_segment(&entry, &die)?);
                }
            }
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            out.push_str(segment);
            out.push_str("::");
        }
        Some(out)
    }

    /// A class's own name: `vector<int, std::allocator<int> >`, `{lambda(int)#2}`.
    fn class_segment(
        &mut self,
        entry: &ScopeEntry,
        die: &DebuggingInformationEntry<Reader>,
    ) -> Option<String> {
        let name = name_of(self.unit, die);
        if let Some(function) = entry.function
            && self.is_closure(entry.offset, name.as_deref())?
        {
            return self.lambda_segment(entry.offset, function);
        }
        let name = name?;
        Some(
            self.with_template_args(&name, &[entry.offset])
                .unwrap_or(name),
        )
    }

    /// Whether the class at `offset` is a lambda's closure type: GCC names it `<lambda(…)>`,
    /// or leaves it unnamed with an artificial `~<lambda>` destructor.
    fn is_closure(&mut self, offset: usize, name: Option<&str>) -> Option<bool> {
        if let Some(name) = name {
            return Some(name.starts_with("<lambda"));
        }
        Some(self.children(offset)?.iter().any(|c| {
            c.tag() == gimli::DW_TAG_subprogram
                && name_of(self.unit, c).is_some_and(|n| n.starts_with("~<lambda"))
        }))
    }

    /// `{lambda(int)#2}`: GCC numbers the closure types of one function in order of
    /// appearance, whatever their parameters (`{lambda(int)#1}`, `{lambda(double)#2}`).
    fn lambda_segment(&mut self, closure: usize, function: usize) -> Option<String> {
        let params = self.lambda_params(closure)?;
        let earlier: Vec<usize> = self
            .scopes
            .entries
            .iter()
            .filter(|e| e.function == Some(function) && e.offset < closure && is_class_tag(e.tag))
            .map(|e| e.offset)
            .collect();
        let mut number = 1;
        for sibling in earlier {
            let die = self.unit.entry(UnitOffset(sibling)).ok()?;
            let name = name_of(self.unit, &die);
            if self.is_closure(sibling, name.as_deref())? {
                number += 1;
            }
        }
        Some(format!("{{lambda({params})#{number}}}"))
    }

    /// The parameter list of a closure type's `operator()`, without `this`.
    fn lambda_params(&mut self, closure: usize) -> Option<String> {
        for child in self.children(closure)? {
            if child.tag() != gimli::DW_TAG_subprogram
                || name_of(self.unit, &child).as_deref() != Some("operator()")
            {
                continue;
            }
            // A generic lambda's operator() is a template: its `auto` parameters are spelled
            // `auto:1` by the demangler, which DWARF does not record.
            if child.has_children()
                && self.children(child.offset().0)?.iter().any(|c| {
                    matches!(
                        c.tag(),
                        gimli::DW_TAG_template_type_parameter
                            | gimli::DW_TAG_GNU_template_parameter_pack
                    )
                })
            {
                return None;
            }
            return self.parameter_list(child.offset().0);
        }
        None
    }

    /// `int, long` from the non-artificial formal parameters of the subprogram at `offset`.
    fn parameter_list(&mut self, offset: usize) -> Option<String> {
        let mut params = Vec::new();
        for child in self.children(offset)? {
            match child.tag() {
                gimli::DW_TAG_formal_parameter => {
                    if matches!(
                        child.attr_value(gimli::DW_AT_artificial),
                        Some(AttributeValue::Flag(true))
                    ) {
                        continue;
                    }
                    params.push(self.type_name(unit_ref(&child, gimli::DW_AT_type)?)?);
                }
                gimli::DW_TAG_unspecified_parameters => params.push("...".to_string()),
                _ => {}
            }
        }
        Some(params.join(", "))
    }

    /// The function around a local entity, as the demangler prints it in a local name:
    /// `work::run(int)`, `main`.
    fn enclosing_function(&mut self, offset: usize) -> Option<String> {
        let resolved = resolve(self.unit, offset)?;
        if let Some(linkage) = &resolved.linkage_name {
            return demangle_with_params(linkage);
        }
        let raw = resolved.name.clone()?;
        let scope = self.scope_prefix(resolved.declaration)?;
        if scope.is_empty() && resolved.chain.len() == 1 && !raw.contains('<') {
            // A function without a linkage name at file scope has C linkage (`main`): its
            // mangled name is its plain name, without parameters.
            return Some(demangle(&raw).into_owned());
        }
        let own = self.with_template_args(&raw, &resolved.chain)?;
        let params = self.parameter_list(resolved.chain[0])?;
        Some(format!("{scope}{own}({params})"))
    }
}

/// `<A, B>`, with GNU's space between two closing brackets (`<std::vector<int> >`).
fn angle_list(args: &[String]) -> String {
    let mut out = String::from("<");
    out.push_str(&args.join(", "));
    if out.ends_with('>') {
        out.push(' ');
    }
    out.push('>');
    out
}

/// GCC's DWARF names of the fundamental types, in the demangler's spelling.
fn base_type_spelling(dwarf: &str) -> String {
    match dwarf {
        "long int" => "long",
        "long unsigned int" => "unsigned long",
        "short int" => "short",
        "short unsigned int" => "unsigned short",
        "long long int" => "long long",
        "long long unsigned int" => "unsigned long long",
        "__int128 unsigned" => "unsigned __int128",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapped::SharedBytes;

    /// A `.debug_info` of two units, each the root, a namespace and a function in it: one
    /// unit in C99, one in C++.
    fn c_and_cxx_units() -> gimli::Dwarf<Reader> {
        use gimli::write;
        let encoding = gimli::Encoding {
            format: gimli::Format::Dwarf32,
            version: 4,
            address_size: 8,
        };
        let mut dwarf = write::Dwarf::new();
        for language in [gimli::DW_LANG_C99, gimli::DW_LANG_C_plus_plus] {
            let unit_id = dwarf
                .units
                .add(write::Unit::new(encoding, write::LineProgram::none()));
            let unit = dwarf.units.get_mut(unit_id);
            let root = unit.root();
            unit.get_mut(root).set(
                gimli::DW_AT_language,
                write::AttributeValue::Language(language),
            );
            let namespace = unit.add(root, gimli::DW_TAG_namespace);
            let function = unit.add(namespace, gimli::DW_TAG_subprogram);
            unit.get_mut(function).set(
                gimli::DW_AT_name,
                write::AttributeValue::String(b"work".to_vec()),
            );
        }
        let mut sections = write::Sections::new(write::EndianVec::new(gimli::LittleEndian));
        dwarf.write(&mut sections).unwrap();
        let mut bytes = std::collections::HashMap::new();
        sections
            .for_each(|id, data| {
                bytes.insert(id, data.slice().to_vec());
                Ok::<_, gimli::Error>(())
            })
            .unwrap();
        gimli::Dwarf::load(|id| {
            let data = SharedBytes::from_vec(bytes.get(&id).cloned().unwrap_or_default());
            Ok::<_, gimli::Error>(Reader::new(data, gimli::RunTimeEndian::Little))
        })
        .unwrap()
    }

    // See: issue #13 point 1 (a C unit's tree is not walked for names never rebuilt)
    #[test]
    fn only_cxx_units_have_their_scopes_gathered() {
        let dwarf = c_and_cxx_units();
        let mut headers = dwarf.units();
        let mut scopes = Vec::new();
        while let Some(header) = headers.next().unwrap() {
            let unit = dwarf.unit(header).unwrap();
            let unit = UnitRef::new(&dwarf, &unit);
            scopes.push(UnitScopes::build(unit));
        }
        let [c, cxx] = scopes.as_slice() else {
            panic!("two units expected, got {}", scopes.len());
        };
        assert!(!c.cxx);
        assert!(c.entries.is_empty());
        assert!(cxx.cxx);
        let tags: Vec<DwTag> = cxx.entries.iter().map(|e| e.tag).collect();
        assert_eq!(tags, [gimli::DW_TAG_namespace, gimli::DW_TAG_subprogram]);
        assert_eq!(cxx.entries[1].parent, Some(cxx.entries[0].offset));
    }

    #[test]
    fn closing_brackets_are_spaced_like_gnu() {
        assert_eq!(angle_list(&["int".into()]), "<int>");
        assert_eq!(
            angle_list(&["int".into(), "std::allocator<int>".into()]),
            "<int, std::allocator<int> >"
        );
    }

    #[test]
    fn fundamental_types_use_demangler_spelling() {
        assert_eq!(base_type_spelling("long unsigned int"), "unsigned long");
        assert_eq!(base_type_spelling("char"), "char");
    }
}
