//! DWARF CFI unwinding (gimli) with a per-module cache, PLT and frame-pointer fallbacks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use gimli::{
    BaseAddresses, CfaRule, EndianSlice, Evaluation, EvaluationResult, Expression, Location,
    Register, RegisterRule, RunTimeEndian, UnwindContext, UnwindSection, Value,
};

use super::module::{CfiSection, ModuleUnwindInfo};
use super::regs::UserRegs;
use super::regs::{aarch64, x86_64};
use super::types::{Arch, FrameAddress, ModuleRef, ModuleSource, StackBytes, UnwindEnd, Unwound};
use crate::process::Avma;

/// Both supported architectures are 64-bit.
const ADDRESS_SIZE: u8 = 8;
/// DWARF expressions run at most this many operations.
const MAX_EXPRESSION_STEPS: u32 = 1000;
/// aarch64 `RA_SIGN_STATE` pseudo-register: bit 0 set means the return address is PAC-signed.
const AARCH64_RA_SIGN_STATE: u16 = 34;
/// Keeps the low 48 bits of a signed aarch64 return address (user space VA size).
const AARCH64_PAC_STRIP_MASK: u64 = 0x0000_ffff_ffff_ffff;

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;
type CachedInfo = Arc<OnceLock<Option<Arc<ModuleUnwindInfo>>>>;

/// A DWARF CFI unwinder shared by all samples and threads: what every walk may reuse.
///
/// Caches each module's unwind index by [`ModuleRef::key`]: the first walk that meets a module
/// parses its ELF headers and indexes its `.eh_frame` / `.debug_frame` FDEs; later walks (on any
/// thread) binary-search that index and evaluate the FDE once per distinct address, after which
/// the evaluated row comes from a bounded cache. Use one unwinder for a whole recording, and
/// one [`UnwindCache`] per worker thread (as gimli's `UnwindContext` and framehop's caches are
/// owned by their caller).
#[derive(Debug, Default)]
pub struct DwarfUnwinder {
    modules: RwLock<HashMap<u64, CachedInfo>>,
    rows: RowCache,
}

/// What one worker keeps between its walks, owned by the caller and never shared: the step
/// cache (compact rows of recently unwound pcs by address space) and gimli's row-evaluation
/// scratch space. Walks with the same cache must not overlap; give each thread its own.
#[derive(Debug)]
pub struct UnwindCache {
    steps: StepCache,
    context: Box<UnwindContext<usize>>,
}

impl Default for UnwindCache {
    fn default() -> Self {
        Self::new()
    }
}

impl UnwindCache {
    /// An empty cache; its step table is allocated on the first walk that names its space.
    pub fn new() -> Self {
        Self {
            steps: StepCache::default(),
            context: Box::new(UnwindContext::new()),
        }
    }
}

/// A CFI row reduced to what unwinding needs; cached per (module key, svma) because profiles hit
/// the same pcs over and over.
#[derive(Debug)]
struct CachedRow {
    section: CfiSection,
    signal_frame: bool,
    cfa: CfaRule<usize>,
    registers: Box<[(Register, RegisterRule<usize>)]>,
}

impl CachedRow {
    /// True when applying the row evaluates no DWARF expression (so needs no section bytes).
    fn reads_no_expression(&self) -> bool {
        matches!(self.cfa, CfaRule::RegisterAndOffset { .. })
            && self.registers.iter().all(|(_, rule)| {
                !matches!(
                    rule,
                    RegisterRule::Expression(_) | RegisterRule::ValExpression(_)
                )
            })
    }
}

/// Most register rules a [`CompactRow`] holds: enough for the return address and every
/// callee-saved register of x86_64 (rbx, rbp, r12-r15), and most aarch64 frames.
const COMPACT_RULES: usize = 8;

/// A register rule of a [`CompactRow`]: the ones compilers emit for ordinary frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompactRule {
    /// The register's value is unknown (the return address: the outermost frame).
    Undefined,
    /// Saved at CFA + offset.
    Offset(i32),
    /// Its value is CFA + offset.
    ValOffset(i32),
}

/// A CFI row with a register-based CFA and only [`CompactRule`]s, in about a cache line:
/// what the step cache keeps, so a cached step reads no pointer and runs a short loop.
/// Applying it gives exactly what applying the row gives.
#[derive(Clone, Copy, Debug)]
struct CompactRow {
    cfa_register: u16,
    cfa_offset: i32,
    signal_frame: bool,
    /// The row has a rule (any rule) for the return-address register.
    return_address_rule: bool,
    /// aarch64: the return address is PAC-signed.
    signed_return_address: bool,
    count: u8,
    rules: [(u16, CompactRule); COMPACT_RULES],
}

impl CompactRow {
    /// The compact form of `row`, when it has one.
    fn of(row: &CachedRow, arch: Arch) -> Option<CompactRow> {
        let CfaRule::RegisterAndOffset { register, offset } = row.cfa else {
            return None;
        };
        let ra_register = match arch {
            Arch::X86_64 => x86_64::RA,
            Arch::Aarch64 => aarch64::LR,
        };
        let mut compact = CompactRow {
            cfa_register: register.0,
            cfa_offset: i32::try_from(offset).ok()?,
            signal_frame: row.signal_frame,
            return_address_rule: false,
            signed_return_address: false,
            count: 0,
            rules: [(0, CompactRule::Undefined); COMPACT_RULES],
        };
        for (register, rule) in row.registers.iter() {
            let register = register.0;
            if arch == Arch::Aarch64 && register == AARCH64_RA_SIGN_STATE {
                compact.signed_return_address =
                    matches!(rule, RegisterRule::Constant(value) if value & 1 != 0);
                continue;
            }
            compact.return_address_rule |= register == ra_register;
            let rule = match *rule {
                RegisterRule::SameValue => continue,
                RegisterRule::Undefined => CompactRule::Undefined,
                RegisterRule::Offset(offset) => CompactRule::Offset(i32::try_from(offset).ok()?),
                RegisterRule::ValOffset(offset) => {
                    CompactRule::ValOffset(i32::try_from(offset).ok()?)
                }
                _ => return None,
            };
            let slot = compact.rules.get_mut(usize::from(compact.count))?;
            *slot = (register, rule);
            compact.count += 1;
        }
        Some(compact)
    }
}

/// Slots of the step cache (a power of two): a profile's hot code has a few thousand pcs.
const STEP_CACHE_SLOTS: usize = 2048;

/// Compact rows of recently unwound pcs by (address space, lookup pc), direct-mapped: a hit
/// skips the module lookup, the FDE search and the shared row cache, which is most of a
/// step's cost. Valid because a [`ModuleSource::space_key`] promises the same mappings.
#[derive(Debug, Default)]
struct StepCache {
    slots: Vec<Option<StepSlot>>,
}

#[derive(Debug)]
struct StepSlot {
    space: u64,
    pc: u64,
    row: CachedStep,
}

/// A cached step's row: compact when it has a compact form, else the shared row (its section
/// bytes are needed only for expressions, which a cached row has none of).
#[derive(Debug)]
enum CachedStep {
    Compact(CompactRow),
    Row(Arc<CachedRow>),
}

impl StepCache {
    fn slot(space: u64, pc: u64) -> usize {
        let mixed = (pc ^ space.rotate_left(31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 44) as usize & (STEP_CACHE_SLOTS - 1)
    }

    fn get(&self, space: u64, pc: u64) -> Option<&CachedStep> {
        match self.slots.get(Self::slot(space, pc)) {
            Some(Some(slot)) if slot.space == space && slot.pc == pc => Some(&slot.row),
            _ => None,
        }
    }

    fn insert(&mut self, space: u64, pc: u64, row: CachedStep) {
        if self.slots.is_empty() {
            self.slots.resize_with(STEP_CACHE_SLOTS, || None);
        }
        if let Some(slot) = self.slots.get_mut(Self::slot(space, pc)) {
            *slot = Some(StepSlot { space, pc, row });
        }
    }
}

/// Shards of the row cache; a shard that grows past its capacity is cleared (profiles revisit
/// a small set of pcs, so a crude eviction is enough and keeps memory bounded).
const ROW_CACHE_SHARDS: usize = 16;
const ROW_CACHE_SHARD_CAPACITY: usize = 1 << 15;

/// One shard of the row cache.
type RowShard = Mutex<HashMap<(u64, u64), Arc<CachedRow>>>;

/// `(module key, svma) → row`, sharded to keep lock contention low across threads.
#[derive(Debug)]
struct RowCache {
    shards: [RowShard; ROW_CACHE_SHARDS],
}

impl Default for RowCache {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

impl RowCache {
    fn shard(&self, key: u64, svma: u64) -> Option<&RowShard> {
        let mixed = (svma ^ key.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.shards.get((mixed >> 60) as usize % ROW_CACHE_SHARDS)
    }

    fn get(&self, key: u64, svma: u64) -> Option<Arc<CachedRow>> {
        let shard = self.shard(key, svma)?.lock().ok()?;
        shard.get(&(key, svma)).cloned()
    }

    fn insert(&self, key: u64, svma: u64, row: Arc<CachedRow>) {
        let Some(Ok(mut shard)) = self.shard(key, svma).map(|shard| shard.lock()) else {
            return;
        };
        if shard.len() >= ROW_CACHE_SHARD_CAPACITY {
            shard.clear();
        }
        shard.insert((key, svma), row);
    }
}

/// How the previous frame was unwound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Cfi,
    Plt,
    FramePointer,
}

/// What a step knows about the pc it starts from.
#[derive(Clone, Copy, Debug)]
struct StepPc {
    /// The pc is exact (the leaf, or interrupted by a signal), not a return address: look up
    /// its own row, not the call instruction's.
    exact: bool,
    /// The pc is the sampled one, not read from the stack.
    sampled: bool,
    /// Without CFI, the frame pointer may be followed (the leaf, or a run of frames already
    /// unwound by frame pointer).
    allow_fp: bool,
}

/// One successful step. Unless `root`, the registers now hold the caller's (pc = the return
/// address).
struct Step {
    root: bool,
    /// The root is the code at the module's entry point.
    entry_point: bool,
    signal_frame: bool,
    method: Method,
}

/// Mutable state of one walk.
struct Walk<'s, 'b> {
    arch: Arch,
    stack: &'s StackBytes<'b>,
    /// A callee-saved register was dropped because its save slot was outside the copy.
    lost_register: bool,
}

impl DwarfUnwinder {
    /// An unwinder with an empty module cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of modules parsed so far.
    pub fn cached_modules(&self) -> usize {
        self.modules.read().map(|map| map.len()).unwrap_or(0)
    }

    /// Unwinds one sample: `regs` and `stack` from the sample, modules from the caller.
    ///
    /// Produces at most `max_frames` frames, leaf first. For each frame the FDE row for the pc
    /// (the leaf, or a pc just after a signal frame) or for `pc - 1` (a return address) gives
    /// the CFA and the saved registers, read from `stack`. A pc in a PLT section without CFI
    /// uses the PLT-entry rule; a leaf without CFI follows the frame pointer. A pc in the code
    /// at its module's entry point is the outermost frame; a return address outside the
    /// process's code is dropped and ends the walk. Never panics; see [`UnwindEnd`] for how it
    /// stops.
    ///
    /// `cache` is the calling worker's own (see [`UnwindCache`]).
    pub fn unwind(
        &self,
        arch: Arch,
        regs: &UserRegs,
        stack: &StackBytes<'_>,
        modules: &dyn ModuleSource,
        max_frames: usize,
        cache: &mut UnwindCache,
    ) -> Unwound {
        let mut frames = Vec::new();
        let end = self.unwind_into(arch, regs, stack, modules, max_frames, &mut frames, cache);
        Unwound { frames, end }
    }

    /// [`unwind`](Self::unwind) into a buffer the caller reuses across walks (cleared first):
    /// no allocation per walk once it has grown.
    #[allow(clippy::too_many_arguments)]
    pub fn unwind_into(
        &self,
        arch: Arch,
        regs: &UserRegs,
        stack: &StackBytes<'_>,
        modules: &dyn ModuleSource,
        max_frames: usize,
        frames: &mut Vec<FrameAddress>,
        cache: &mut UnwindCache,
    ) -> UnwindEnd {
        frames.clear();
        if max_frames == 0 {
            return UnwindEnd::DepthLimit;
        }
        frames.push(FrameAddress::InstructionPointer(Avma(regs.pc())));
        if regs.arch() != arch {
            return UnwindEnd::BadCfi(format!("registers are for {:?}, not {arch:?}", regs.arch()));
        }
        let mut walk = Walk {
            arch,
            stack,
            lost_register: false,
        };
        let mut regs = regs.clone();
        let space = modules.space_key();
        let mut exact_pc = true;
        let mut previous = Method::Cfi;
        let mut stalled_steps = 0u32;
        loop {
            if frames.len() >= max_frames {
                break UnwindEnd::DepthLimit;
            }
            let pc = StepPc {
                exact: exact_pc,
                sampled: frames.len() == 1,
                allow_fp: frames.len() == 1 || previous == Method::FramePointer,
            };
            let (old_sp, old_pc) = (regs.sp(), regs.pc());
            let step = match self.step(&mut walk, &mut regs, pc, modules, space, cache) {
                Ok(step) => step,
                Err(UnwindEnd::ReturnAddressOutsideCode) => {
                    // Not a frame: the registers and the copied stack disagree.
                    frames.pop();
                    break UnwindEnd::ReturnAddressOutsideCode;
                }
                Err(end) => break end,
            };
            if step.entry_point {
                break UnwindEnd::ReachedEntryPoint;
            }
            if step.root {
                break UnwindEnd::ReachedRoot;
            }
            let return_address = regs.pc();
            if return_address == 0 {
                break UnwindEnd::ReachedRoot;
            }
            if !step.signal_frame {
                let new_sp = regs.sp();
                if new_sp < old_sp {
                    break UnwindEnd::Loop;
                }
                if new_sp == old_sp {
                    // Only an aarch64 leaf that keeps its return address in lr may leave sp
                    // unchanged, and only once in a row.
                    stalled_steps += 1;
                    if arch == Arch::X86_64 || stalled_steps > 1 || return_address == old_pc {
                        break UnwindEnd::Loop;
                    }
                } else {
                    stalled_steps = 0;
                }
            }
            frames.push(if step.signal_frame {
                FrameAddress::InstructionPointer(Avma(return_address))
            } else {
                FrameAddress::ReturnAddress(Avma(return_address))
            });
            exact_pc = step.signal_frame;
            previous = step.method;
        }
    }

    /// The cached unwind info of a module, parsing it on first use.
    fn module_info(&self, module: &ModuleRef) -> Option<Arc<ModuleUnwindInfo>> {
        let cached = self
            .modules
            .read()
            .ok()
            .and_then(|map| map.get(&module.key).cloned());
        let cell = match cached {
            Some(cell) => cell,
            None => {
                let mut map = self.modules.write().ok()?;
                map.entry(module.key).or_default().clone()
            }
        };
        cell.get_or_init(|| {
            ModuleUnwindInfo::parse((*module.file).as_ref(), ADDRESS_SIZE).map(Arc::new)
        })
        .clone()
    }

    /// Unwinds one frame.
    fn step(
        &self,
        walk: &mut Walk<'_, '_>,
        regs: &mut UserRegs,
        pc: StepPc,
        modules: &dyn ModuleSource,
        space: Option<u64>,
        cache: &mut UnwindCache,
    ) -> Result<Step, UnwindEnd> {
        let allow_fp = pc.allow_fp;
        let lookup = if pc.exact {
            regs.pc()
        } else {
            regs.pc().wrapping_sub(1)
        };
        if let Some(space) = space {
            if let Some(step) = cache.steps.get(space, lookup) {
                let (found, signal_frame) = match step {
                    CachedStep::Compact(row) => (apply_compact(walk, regs, row)?, row.signal_frame),
                    CachedStep::Row(row) => {
                        // No expressions in it, so no section bytes are read: an empty one.
                        let no_section = gimli::EhFrame::new(&[], RunTimeEndian::Little);
                        (apply_row(walk, regs, row, &no_section)?, row.signal_frame)
                    }
                };
                return Ok(Step {
                    root: !found,
                    entry_point: false,
                    signal_frame,
                    method: Method::Cfi,
                });
            }
        }
        let Some(module) = modules.module_at(Avma(lookup)) else {
            if !pc.sampled && !modules.is_code(Avma(lookup)) {
                return Err(UnwindEnd::ReturnAddressOutsideCode);
            }
            return fallback(
                walk,
                regs,
                allow_fp,
                UnwindEnd::NoUnwindInfo { module_key: None },
            );
        };
        let no_info = UnwindEnd::NoUnwindInfo {
            module_key: Some(module.key),
        };
        let Some(info) = self.module_info(&module) else {
            return fallback(walk, regs, allow_fp, no_info);
        };
        let svma = lookup.wrapping_sub(info.bias(module.map_start.0, module.map_pgoff));
        if info.in_entry_code(svma) {
            return Ok(Step {
                root: true,
                entry_point: true,
                signal_frame: false,
                method: Method::Cfi,
            });
        }
        let file = (*module.file).as_ref();
        let aarch64 = walk.arch == Arch::Aarch64;
        let row = match self.rows.get(module.key, svma) {
            Some(row) => row,
            None => {
                let Some(fde) = info.find_fde(svma) else {
                    if !pc.sampled && !info.in_executable_segment(svma) {
                        return Err(UnwindEnd::ReturnAddressOutsideCode);
                    }
                    if info.in_plt(svma) {
                        return plt_step(walk, regs);
                    }
                    return fallback(walk, regs, allow_fp, no_info);
                };
                let row = Arc::new(match fde.section {
                    CfiSection::EhFrame => {
                        let bytes = info.eh_frame.as_ref().map_or(&[][..], |b| b.get(file));
                        let section = info.eh_frame_section(bytes, ADDRESS_SIZE, aarch64);
                        let offset = gimli::EhFrameOffset(fde.offset);
                        let bases = &info.eh_frame_bases;
                        compute_row(
                            &section,
                            bases,
                            offset,
                            svma,
                            fde.section,
                            &mut cache.context,
                        )?
                    }
                    CfiSection::DebugFrame => {
                        let bytes = info.debug_frame.as_ref().map_or(&[][..], |b| b.get(file));
                        let section = info.debug_frame_section(bytes, ADDRESS_SIZE, aarch64);
                        let offset = gimli::DebugFrameOffset(fde.offset);
                        let bases = BaseAddresses::default();
                        compute_row(
                            &section,
                            &bases,
                            offset,
                            svma,
                            fde.section,
                            &mut cache.context,
                        )?
                    }
                });
                self.rows.insert(module.key, svma, row.clone());
                row
            }
        };
        if let Some(space) = space {
            if let Some(compact) = CompactRow::of(&row, walk.arch) {
                cache
                    .steps
                    .insert(space, lookup, CachedStep::Compact(compact));
            } else if row.reads_no_expression() {
                cache
                    .steps
                    .insert(space, lookup, CachedStep::Row(row.clone()));
            }
        }
        let found = match row.section {
            CfiSection::EhFrame => {
                let bytes = info.eh_frame.as_ref().map_or(&[][..], |b| b.get(file));
                let section = info.eh_frame_section(bytes, ADDRESS_SIZE, aarch64);
                apply_row(walk, regs, &row, &section)?
            }
            CfiSection::DebugFrame => {
                let bytes = info.debug_frame.as_ref().map_or(&[][..], |b| b.get(file));
                let section = info.debug_frame_section(bytes, ADDRESS_SIZE, aarch64);
                apply_row(walk, regs, &row, &section)?
            }
        };
        Ok(Step {
            root: !found,
            entry_point: false,
            signal_frame: row.signal_frame,
            method: Method::Cfi,
        })
    }
}

/// Evaluates the FDE at `offset` up to the row for `svma`.
fn compute_row<'a, S>(
    section: &S,
    bases: &BaseAddresses,
    offset: S::Offset,
    svma: u64,
    kind: CfiSection,
    context: &mut UnwindContext<usize>,
) -> Result<CachedRow, UnwindEnd>
where
    S: UnwindSection<Slice<'a>>,
{
    let bad = |err: gimli::Error| UnwindEnd::BadCfi(err.to_string());
    let fde = section
        .fde_from_offset(bases, offset, |section, bases, offset| {
            section.cie_from_offset(bases, offset)
        })
        .map_err(bad)?;
    let row = fde
        .unwind_info_for_address(section, bases, context, svma)
        .map_err(bad)?;
    Ok(CachedRow {
        section: kind,
        signal_frame: fde.is_signal_trampoline(),
        cfa: row.cfa().clone(),
        registers: row
            .registers()
            .map(|(register, rule)| (*register, rule.clone()))
            .collect(),
    })
}

/// Applies one CFI row: computes the CFA, then every register rule, from the callee's `regs`.
/// Returns `None` when the return address is undefined (the root).
fn apply_row<'a, S>(
    walk: &mut Walk<'_, '_>,
    regs: &mut UserRegs,
    row: &CachedRow,
    section: &S,
) -> Result<bool, UnwindEnd>
where
    S: UnwindSection<Slice<'a>>,
{
    let signal_frame = row.signal_frame;
    let cfa = match &row.cfa {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .get(register.0)
            .ok_or_else(|| walk.missing_register(register.0))?
            .wrapping_add_signed(*offset),
        CfaRule::Expression(expression) => {
            let expression = expression
                .get(section)
                .map_err(|err| UnwindEnd::BadCfi(err.to_string()))?;
            walk.evaluate(expression, regs, None)?
        }
    };
    // The caller's frame lies above the callee's (x86_64: strictly, a call pushed the return
    // address). A signal frame may switch stacks, so it is exempt.
    let sp = regs.sp();
    if !signal_frame && (cfa < sp || (cfa == sp && walk.arch == Arch::X86_64)) {
        return Err(UnwindEnd::Loop);
    }
    let ra_register = regs.return_address_register();
    // Rules read the callee's registers; copy them only for the rules that do (rare: register
    // and expression rules), and update `regs` in place otherwise.
    let needs_snapshot = row.registers.iter().any(|(_, rule)| {
        matches!(
            rule,
            RegisterRule::Register(_)
                | RegisterRule::Expression(_)
                | RegisterRule::ValExpression(_)
        )
    });
    let snapshot = needs_snapshot.then(|| regs.clone());
    let sp_register = regs.sp_register();
    regs.set(sp_register, cfa);
    let mut ra_rule_seen = false;
    let mut signed_return_address = false;
    for (register, rule) in row.registers.iter() {
        let register = register.0;
        if walk.arch == Arch::Aarch64 && register == AARCH64_RA_SIGN_STATE {
            signed_return_address = matches!(rule, RegisterRule::Constant(value) if value & 1 != 0);
            continue;
        }
        let is_ra = register == ra_register;
        ra_rule_seen |= is_ra;
        let value = match rule {
            RegisterRule::Undefined => {
                if is_ra {
                    return Ok(false);
                }
                None
            }
            RegisterRule::SameValue => continue,
            RegisterRule::Offset(offset) => walk.stack.read_u64(cfa.wrapping_add_signed(*offset)),
            RegisterRule::ValOffset(offset) => Some(cfa.wrapping_add_signed(*offset)),
            RegisterRule::Register(other) => snapshot.as_ref().and_then(|old| old.get(other.0)),
            RegisterRule::Expression(expression) | RegisterRule::ValExpression(expression) => {
                let old = snapshot
                    .as_ref()
                    .ok_or_else(|| UnwindEnd::BadCfi("expression without registers".into()))?;
                let expression = expression
                    .get(section)
                    .map_err(|err| UnwindEnd::BadCfi(err.to_string()))?;
                let result = walk.evaluate(expression, old, Some(cfa))?;
                if matches!(rule, RegisterRule::Expression(_)) {
                    walk.stack.read_u64(result)
                } else {
                    Some(result)
                }
            }
            RegisterRule::Constant(value) => Some(*value),
            RegisterRule::Architectural => {
                return Err(UnwindEnd::BadCfi(format!(
                    "architectural rule for register {register}"
                )));
            }
        };
        match value {
            Some(value) => regs.set(register, value),
            None if is_ra => return Err(UnwindEnd::StackExhausted),
            None => {
                if matches!(rule, RegisterRule::Offset(_) | RegisterRule::Expression(_)) {
                    walk.lost_register = true;
                }
                regs.forget(register);
            }
        }
    }
    if !ra_rule_seen && walk.arch == Arch::X86_64 {
        // x86_64 CIEs always say where the return address is; none means the outermost frame.
        return Ok(false);
    }
    let mut return_address = regs
        .get(ra_register)
        .ok_or_else(|| walk.missing_register(ra_register))?;
    if walk.arch == Arch::Aarch64 && signed_return_address {
        return_address &= AARCH64_PAC_STRIP_MASK;
    }
    regs.set_pc(return_address);
    Ok(true)
}

/// [`apply_row`] for a [`CompactRow`]: the same checks and results, without the generality.
fn apply_compact(
    walk: &mut Walk<'_, '_>,
    regs: &mut UserRegs,
    row: &CompactRow,
) -> Result<bool, UnwindEnd> {
    let cfa = regs
        .get(row.cfa_register)
        .ok_or_else(|| walk.missing_register(row.cfa_register))?
        .wrapping_add_signed(i64::from(row.cfa_offset));
    let sp = regs.sp();
    if !row.signal_frame && (cfa < sp || (cfa == sp && walk.arch == Arch::X86_64)) {
        return Err(UnwindEnd::Loop);
    }
    let ra_register = regs.return_address_register();
    let sp_register = regs.sp_register();
    regs.set(sp_register, cfa);
    for &(register, rule) in row.rules.iter().take(usize::from(row.count)) {
        let is_ra = register == ra_register;
        match rule {
            CompactRule::Undefined if is_ra => return Ok(false),
            CompactRule::Undefined => regs.forget(register),
            CompactRule::ValOffset(offset) => {
                regs.set(register, cfa.wrapping_add_signed(i64::from(offset)));
            }
            CompactRule::Offset(offset) => {
                match walk
                    .stack
                    .read_u64(cfa.wrapping_add_signed(i64::from(offset)))
                {
                    Some(value) => regs.set(register, value),
                    None if is_ra => return Err(UnwindEnd::StackExhausted),
                    None => {
                        walk.lost_register = true;
                        regs.forget(register);
                    }
                }
            }
        }
    }
    if !row.return_address_rule && walk.arch == Arch::X86_64 {
        return Ok(false);
    }
    let mut return_address = regs
        .get(ra_register)
        .ok_or_else(|| walk.missing_register(ra_register))?;
    if walk.arch == Arch::Aarch64 && row.signed_return_address {
        return_address &= AARCH64_PAC_STRIP_MASK;
    }
    regs.set_pc(return_address);
    Ok(true)
}

/// A pc in a PLT stub without CFI: x86_64 stubs only jump, so the return address is at [rsp]
/// and the caller's sp is rsp + 8; aarch64 stubs keep it in lr and leave sp alone.
fn plt_step(walk: &mut Walk<'_, '_>, regs: &mut UserRegs) -> Result<Step, UnwindEnd> {
    match walk.arch {
        Arch::X86_64 => {
            let sp = regs.sp();
            let return_address = walk.stack.read_u64(sp).ok_or(UnwindEnd::StackExhausted)?;
            regs.set(x86_64::RSP, sp.wrapping_add(8));
            regs.set_pc(return_address);
        }
        Arch::Aarch64 => {
            let return_address = regs.lr().ok_or(UnwindEnd::StackExhausted)?;
            regs.set_pc(return_address);
        }
    }
    Ok(Step {
        root: false,
        entry_point: false,
        signal_frame: false,
        method: Method::Plt,
    })
}

/// No CFI for the pc: follow the frame pointer when allowed (the leaf, or a run of frames that
/// were already unwound by frame pointer), otherwise stop with `end`.
fn fallback(
    walk: &mut Walk<'_, '_>,
    regs: &mut UserRegs,
    allow_fp: bool,
    end: UnwindEnd,
) -> Result<Step, UnwindEnd> {
    if !allow_fp {
        return Err(end);
    }
    let Some(fp) = regs.fp() else {
        return Err(end);
    };
    if fp == 0 {
        return Err(end);
    }
    if fp < regs.sp() {
        return Err(end);
    }
    let (Some(saved_fp), Some(return_address)) = (
        walk.stack.read_u64(fp),
        fp.checked_add(8).and_then(|slot| walk.stack.read_u64(slot)),
    ) else {
        return Err(UnwindEnd::StackExhausted);
    };
    let caller_sp = fp.checked_add(16).ok_or(UnwindEnd::StackExhausted)?;
    let (fp_register, sp_register) = match walk.arch {
        Arch::X86_64 => (x86_64::RBP, x86_64::RSP),
        Arch::Aarch64 => (aarch64::FP, aarch64::SP),
    };
    regs.set(fp_register, saved_fp);
    regs.set(sp_register, caller_sp);
    if walk.arch == Arch::Aarch64 {
        // The caller's lr at its call site is not recorded in a frame record.
        regs.forget(aarch64::LR);
    }
    regs.set_pc(return_address);
    Ok(Step {
        root: false,
        entry_point: false,
        signal_frame: false,
        method: Method::FramePointer,
    })
}

impl Walk<'_, '_> {
    /// The end for a CFI rule that needs a register we do not have.
    fn missing_register(&self, register: u16) -> UnwindEnd {
        if self.lost_register {
            UnwindEnd::StackExhausted
        } else {
            UnwindEnd::BadCfi(format!("register {register} is not known"))
        }
    }

    /// Evaluates a CFI DWARF expression; `initial` is pushed first (the CFA, for register rules).
    fn evaluate(
        &self,
        expression: Expression<Slice<'_>>,
        regs: &UserRegs,
        initial: Option<u64>,
    ) -> Result<u64, UnwindEnd> {
        let encoding = gimli::Encoding {
            format: gimli::Format::Dwarf32,
            version: 4,
            address_size: ADDRESS_SIZE,
        };
        let bad = |err: gimli::Error| UnwindEnd::BadCfi(format!("CFI expression: {err}"));
        let mut evaluation: Evaluation<Slice<'_>> = expression.evaluation(encoding);
        evaluation.set_max_iterations(MAX_EXPRESSION_STEPS);
        if let Some(value) = initial {
            evaluation.set_initial_value(value);
        }
        let mut state = evaluation.evaluate().map_err(bad)?;
        loop {
            state = match state {
                EvaluationResult::Complete => break,
                EvaluationResult::RequiresRegister { register, .. } => {
                    let value = self.register_for_expression(regs, register)?;
                    evaluation
                        .resume_with_register(Value::Generic(value))
                        .map_err(bad)?
                }
                EvaluationResult::RequiresMemory { address, size, .. } => {
                    let value = self
                        .stack
                        .read_sized(address, size)
                        .ok_or(UnwindEnd::StackExhausted)?;
                    evaluation
                        .resume_with_memory(Value::Generic(value))
                        .map_err(bad)?
                }
                other => {
                    return Err(UnwindEnd::BadCfi(format!(
                        "unsupported CFI expression need: {other:?}"
                    )));
                }
            };
        }
        let pieces = evaluation.as_result();
        match pieces.first().map(|piece| &piece.location) {
            Some(Location::Address { address }) if pieces.len() == 1 => Ok(*address),
            Some(Location::Value { value }) if pieces.len() == 1 => {
                value.to_u64(u64::MAX).map_err(bad)
            }
            _ => Err(UnwindEnd::BadCfi(
                "CFI expression did not produce an address".into(),
            )),
        }
    }

    fn register_for_expression(
        &self,
        regs: &UserRegs,
        register: Register,
    ) -> Result<u64, UnwindEnd> {
        regs.get(register.0)
            .ok_or_else(|| self.missing_register(register.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// Applies `row` both ways to the same registers and stack; both must agree on
    /// everything: the outcome, every register, and whether a register was lost.
    fn assert_compact_matches(arch: Arch, row: CachedRow, regs: UserRegs, words: &[u64]) {
        let compact = CompactRow::of(&row, arch).expect("row has a compact form");
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let stack = StackBytes {
            start: regs.sp(),
            bytes: &bytes,
        };
        let no_section = gimli::EhFrame::new(&[], RunTimeEndian::Little);
        let (mut full_regs, mut compact_regs) = (regs.clone(), regs);
        let mut full_walk = Walk {
            arch,
            stack: &stack,
            lost_register: false,
        };
        let mut compact_walk = Walk {
            arch,
            stack: &stack,
            lost_register: false,
        };
        let full = apply_row(&mut full_walk, &mut full_regs, &row, &no_section);
        let short = apply_compact(&mut compact_walk, &mut compact_regs, &compact);
        assert_eq!(full, short);
        assert_eq!(full_regs, compact_regs);
        assert_eq!(full_walk.lost_register, compact_walk.lost_register);
    }

    fn row(cfa: (u16, i64), rules: &[(u16, RegisterRule<usize>)]) -> CachedRow {
        CachedRow {
            section: CfiSection::EhFrame,
            signal_frame: false,
            cfa: CfaRule::RegisterAndOffset {
                register: Register(cfa.0),
                offset: cfa.1,
            },
            registers: rules
                .iter()
                .map(|(r, rule)| (Register(*r), rule.clone()))
                .collect(),
        }
    }

    #[test]
    fn compact_rows_apply_exactly_like_rows() {
        use RegisterRule::{Constant, Offset, SameValue, Undefined, ValOffset};
        let sp = 0x7fff_0000u64;
        let x86 = |bp| UserRegs::new(Arch::X86_64, 0x40_1000, sp).with_dwarf_register(6, bp);
        let words = [1, 2, 3, 0x40_2000, sp + 64, 0x40_3000, 7, 8];
        // Frame-pointer body, callee-saved registers, a prologue, the root, a truncated copy.
        let rows = [
            row((6, 16), &[(6, Offset(-16)), (16, Offset(-8))]),
            row(
                (7, 48),
                &[
                    (3, Offset(-40)),
                    (12, Offset(-32)),
                    (6, Offset(-24)),
                    (16, Offset(-8)),
                ],
            ),
            row((7, 8), &[(16, Offset(-8))]),
            row((7, 8), &[(16, Undefined)]),
            row(
                (7, 8),
                &[(6, SameValue), (15, ValOffset(8)), (16, Offset(-8))],
            ),
            row((7, 4096), &[(3, Offset(-16)), (16, Offset(-8))]),
            row((7, 4096), &[(3, Offset(-4096)), (16, Offset(-8))]),
            row((7, 16), &[(6, Offset(-16))]),
        ];
        for row in rows {
            assert_compact_matches(Arch::X86_64, row, x86(sp + 16), &words);
        }
        // aarch64: lr saved, a PAC-signed return address, lr kept in its register.
        let lr = 0x8000_0000_0040_5000u64;
        let arm = UserRegs::new(Arch::Aarch64, 0x40_1000, sp)
            .with_dwarf_register(29, sp + 16)
            .with_dwarf_register(30, lr);
        let signed = Constant(1);
        for row in [
            row((29, 16), &[(29, Offset(-16)), (30, Offset(-8))]),
            row(
                (31, 32),
                &[(AARCH64_RA_SIGN_STATE, signed), (30, Offset(-8))],
            ),
            row((31, 0), &[]),
            row((31, 0), &[(AARCH64_RA_SIGN_STATE, Constant(1))]),
        ] {
            assert_compact_matches(Arch::Aarch64, row, arm.clone(), &words);
        }
    }

    #[test]
    fn rows_without_a_compact_form_are_refused() {
        let expression = RegisterRule::Register(Register(3));
        assert!(CompactRow::of(&row((7, 8), &[(16, expression)]), Arch::X86_64).is_none());
        let many: Vec<_> = (0..9u16).map(|r| (r, RegisterRule::Offset(-8))).collect();
        assert!(CompactRow::of(&row((7, 8), &many), Arch::X86_64).is_none());
        assert!(CompactRow::of(&row((7, 1 << 40), &[]), Arch::X86_64).is_none());
    }

    #[test]
    fn unwinder_is_send_and_sync() {
        assert_send_sync::<DwarfUnwinder>();
    }

    #[test]
    fn no_modules_falls_back_to_frame_pointers() {
        let start = 0x7ff0_0000u64;
        let mut bytes = vec![0u8; 64];
        // Record at start+16: saved rbp = start+48, ra = 0x4444. The record at start+48
        // points to itself, so the next fp lies below the caller's sp and the walk stops.
        bytes[16..24].copy_from_slice(&(start + 48).to_le_bytes());
        bytes[24..32].copy_from_slice(&0x4444u64.to_le_bytes());
        bytes[48..56].copy_from_slice(&(start + 48).to_le_bytes());
        bytes[56..64].copy_from_slice(&0x5555u64.to_le_bytes());
        let stack = StackBytes {
            start,
            bytes: &bytes,
        };
        let regs = UserRegs::new(Arch::X86_64, 0x1234, start).with_dwarf_register(6, start + 16);
        let unwound = DwarfUnwinder::new().unwind(
            Arch::X86_64,
            &regs,
            &stack,
            &(),
            64,
            &mut UnwindCache::new(),
        );
        assert_eq!(
            unwound.frames,
            [
                FrameAddress::InstructionPointer(Avma(0x1234)),
                FrameAddress::ReturnAddress(Avma(0x4444)),
                FrameAddress::ReturnAddress(Avma(0x5555)),
            ]
        );
        assert_eq!(unwound.end, UnwindEnd::NoUnwindInfo { module_key: None });
    }

    #[test]
    fn no_modules_and_no_frame_pointer_is_no_unwind_info() {
        let regs = UserRegs::new(Arch::X86_64, 0x1234, 0x1000);
        let stack = StackBytes {
            start: 0x1000,
            bytes: &[0; 64],
        };
        let unwound = DwarfUnwinder::new().unwind(
            Arch::X86_64,
            &regs,
            &stack,
            &(),
            64,
            &mut UnwindCache::new(),
        );
        assert_eq!(
            unwound.frames,
            [FrameAddress::InstructionPointer(Avma(0x1234))]
        );
        assert_eq!(unwound.end, UnwindEnd::NoUnwindInfo { module_key: None });
    }

    #[test]
    fn arch_mismatch_is_reported() {
        let regs = UserRegs::new(Arch::Aarch64, 1, 2);
        let stack = StackBytes {
            start: 2,
            bytes: &[],
        };
        let unwound = DwarfUnwinder::new().unwind(
            Arch::X86_64,
            &regs,
            &stack,
            &(),
            8,
            &mut UnwindCache::new(),
        );
        assert!(matches!(unwound.end, UnwindEnd::BadCfi(_)));
        assert_eq!(unwound.frames.len(), 1);
    }
}
