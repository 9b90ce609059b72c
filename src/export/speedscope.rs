//! speedscope exporter: the profile in speedscope's file format
//! (<https://www.speedscope.app/file-format-schema.json>).
//!
//! One `sampled` profile per (thread, event) with samples, in time order, sharing one frame
//! table. Stacks are listed root first, as speedscope reads them. Weights are periods:
//! nanoseconds for clock events, unit `none` (event counts) otherwise. speedscope takes a
//! sampled profile's total weight from `endValue - startValue`, so `startValue` is 0 and
//! `endValue` the sum of the weights.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

use crate::profile::{FrameId, Profile, StackId, ThreadId};

/// The `$schema` value speedscope recognizes its files by.
const SCHEMA_URL: &str = "https://www.speedscope.app/file-format-schema.json";

#[derive(Serialize)]
struct File<'p> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    shared: Shared<'p>,
    profiles: Vec<SampledProfile<'p>>,
    name: String,
    #[serde(rename = "activeProfileIndex")]
    active_profile_index: usize,
    exporter: String,
}

#[derive(Serialize)]
struct Shared<'p> {
    frames: &'p [FrameOut<'p>],
}

#[derive(Serialize)]
struct FrameOut<'p> {
    name: &'p str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'p str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SampledProfile<'p> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    unit: &'static str,
    start_value: u64,
    end_value: u64,
    samples: Vec<&'p [usize]>,
    weights: Vec<u64>,
}

/// Writes `profile` to `w` as speedscope JSON.
pub(super) fn write(profile: &Profile, w: &mut dyn Write) -> io::Result<()> {
    let stacks = RootFirstStacks::new(profile);
    let file = build(profile, &stacks);
    serde_json::to_writer(w, &file)?;
    Ok(())
}

/// Every sampled stack as root-first indices into the shared frame table.
struct RootFirstStacks<'p> {
    frames: Vec<FrameOut<'p>>,
    stacks: HashMap<StackId, Vec<usize>>,
}

impl<'p> RootFirstStacks<'p> {
    fn new(profile: &'p Profile) -> Self {
        // Frames that differ only in their address or kind look the same in speedscope.
        type FrameKey<'p> = (&'p str, Option<&'p str>, Option<u32>);
        let mut index: HashMap<FrameKey<'p>, usize> = HashMap::default();
        let mut frame_index: HashMap<FrameId, usize> = HashMap::default();
        let mut frames = Vec::new();
        let mut stacks = HashMap::default();
        for stack in profile.samples.iter().filter_map(|s| s.stack) {
            if stacks.contains_key(&stack) {
                continue;
            }
            let mut indices = Vec::new();
            // `take` bounds the walk should a corrupt table make the parent links cycle.
            for id in profile
                .frames_leaf_first(Some(stack))
                .take(profile.stacks.len())
            {
                let Some(frame) = profile.frames.get(id as usize) else {
                    continue;
                };
                let i = *frame_index.entry(id).or_insert_with(|| {
                    // The source file when known, else the module, so the binary stays visible.
                    let file = frame.file.as_ref().unwrap_or(&frame.module);
                    let file = Some(&**file).filter(|f| !f.is_empty());
                    let key = (&*frame.function, file, frame.line);
                    *index.entry(key).or_insert_with(|| {
                        frames.push(FrameOut {
                            name: &frame.function,
                            file,
                            line: frame.line,
                        });
                        frames.len() - 1
                    })
                });
                indices.push(i);
            }
            indices.reverse();
            stacks.insert(stack, indices);
        }
        RootFirstStacks { frames, stacks }
    }

    fn root_first(&self, stack: Option<StackId>) -> &[usize] {
        stack
            .and_then(|s| self.stacks.get(&s))
            .map_or(&[], Vec::as_slice)
    }
}

fn build<'p>(profile: &'p Profile, stacks: &'p RootFirstStacks<'p>) -> File<'p> {
    let mut groups: BTreeMap<(ThreadId, u16), Vec<usize>> = BTreeMap::new();
    for (i, sample) in profile.samples.iter().enumerate() {
        groups
            .entry((sample.thread, sample.event))
            .or_default()
            .push(i);
    }
    let several_events = profile.events.len() > 1;
    let mut profiles = Vec::with_capacity(groups.len());
    for ((thread, event), members) in groups {
        let event_name = profile
            .events
            .get(usize::from(event))
            .map_or("", |e| e.name.as_str());
        let mut name = match profile.threads.get(thread as usize) {
            Some(t) => format!(
                "{} (pid {}, tid {})",
                t.name,
                t.pid_signed(),
                t.tid_signed()
            ),
            None => format!("thread #{thread}"),
        };
        if several_events {
            name = format!("{name} [{event_name}]");
        }
        let mut samples = Vec::with_capacity(members.len());
        let mut weights = Vec::with_capacity(members.len());
        for sample in members.iter().filter_map(|&i| profile.samples.get(i)) {
            samples.push(stacks.root_first(sample.stack));
            weights.push(sample.period);
        }
        let end_value = weights.iter().fold(0u64, |sum, &w| sum.saturating_add(w));
        profiles.push(SampledProfile {
            kind: "sampled",
            name,
            unit: if super::shared::is_clock_event(event_name) {
                "nanoseconds"
            } else {
                "none"
            },
            start_value: 0,
            end_value,
            samples,
            weights,
        });
    }
    let active_profile_index = (0..profiles.len())
        .max_by_key(|&i| profiles.get(i).map(|p| p.samples.len()))
        .unwrap_or(0);
    let name = match &profile.meta.cmdline {
        Some(cmdline) => format!("kprof: {cmdline}"),
        None => "kprof profile".to_owned(),
    };
    File {
        schema: SCHEMA_URL,
        shared: Shared {
            frames: &stacks.frames,
        },
        profiles,
        name,
        active_profile_index,
        exporter: format!("kprof@{}", env!("CARGO_PKG_VERSION")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use serde_json::Value;

    use super::*;
    use crate::export::test_support::{self, sample_profile, written_json};

    fn schema_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/speedscope-schema.json")
    }

    #[test]
    fn one_profile_per_thread_and_event_with_model_stacks_and_weights() {
        let profile = sample_profile();
        let json = written_json(write, &profile);
        assert_eq!(json["$schema"], SCHEMA_URL);
        let frames = json["shared"]["frames"].as_array().unwrap();
        let name_of = |i: &Value| {
            frames[i.as_u64().unwrap() as usize]["name"]
                .as_str()
                .unwrap()
        };

        // Expected: per profile name, the root-first names and period of each sample in order.
        type Rows = Vec<(Vec<String>, u64)>;
        let mut expected: BTreeMap<String, (String, Rows)> = BTreeMap::new();
        for sample in &profile.samples {
            let thread = &profile.threads[sample.thread as usize];
            let event = &profile.events[usize::from(sample.event)];
            let key = format!(
                "{} (pid {}, tid {}) [{}]",
                thread.name,
                thread.pid_signed(),
                thread.tid_signed(),
                event.name
            );
            let unit = if event.name == "cpu-clock" {
                "nanoseconds"
            } else {
                "none"
            };
            let mut names: Vec<String> = profile
                .frames_leaf_first(sample.stack)
                .map(|f| profile.frames[f as usize].function.to_string())
                .collect();
            names.reverse();
            let entry = expected
                .entry(key)
                .or_insert_with(|| (unit.to_owned(), Vec::new()));
            entry.1.push((names, sample.period));
        }
        let mut actual = BTreeMap::new();
        for p in json["profiles"].as_array().unwrap() {
            assert_eq!(p["type"], "sampled");
            assert_eq!(p["startValue"], 0);
            let samples = p["samples"].as_array().unwrap();
            let weights = p["weights"].as_array().unwrap();
            assert_eq!(samples.len(), weights.len());
            let sum: u64 = weights.iter().map(|w| w.as_u64().unwrap()).sum();
            assert_eq!(p["endValue"], sum);
            let rows = samples
                .iter()
                .zip(weights)
                .map(|(stack, w)| {
                    let names = stack
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| name_of(i).to_owned())
                        .collect();
                    (names, w.as_u64().unwrap())
                })
                .collect();
            let unit = p["unit"].as_str().unwrap().to_owned();
            actual.insert(p["name"].as_str().unwrap().to_owned(), (unit, rows));
        }
        assert_eq!(actual, expected);
    }

    #[test]
    fn frames_carry_source_lines_or_modules() {
        let json = written_json(write, &sample_profile());
        let frames = json["shared"]["frames"].as_array().unwrap();
        let find = |name: &str| frames.iter().find(|f| f["name"] == name).unwrap();
        assert_eq!(find("helper")["file"], "src/util.h");
        assert_eq!(find("helper")["line"], 5);
        assert_eq!(find("ksys_write")["file"], "[kernel.kallsyms]");
        assert!(find("ksys_write").get("line").is_none());
        let mut names: Vec<&str> = frames.iter().map(|f| f["name"].as_str().unwrap()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "frames are shared, not repeated");
    }

    /// Validates the output against speedscope's published JSON schema with python's
    /// `jsonschema`, and checks the validator rejects a broken file.
    #[test]
    fn output_validates_against_the_published_schema() {
        let probe = Command::new("python3")
            .args(["-c", "import jsonschema"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            test_support::skip_for_missing("python3 with the jsonschema package");
            return;
        }
        let validate = |json: &Value, name: &str| {
            let path = test_support::temp_path(name);
            std::fs::write(&path, serde_json::to_vec(json).unwrap()).unwrap();
            let output = Command::new("python3")
                .args([
                    "-c",
                    "import json, sys, jsonschema\n\
                     schema = json.load(open(sys.argv[1]))\n\
                     jsonschema.validate(json.load(open(sys.argv[2])), schema)",
                ])
                .arg(schema_path())
                .arg(&path)
                .output()
                .unwrap();
            std::fs::remove_file(&path).unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let mut json = written_json(write, &sample_profile());
        let (ok, stderr) = validate(&json, "valid.speedscope.json");
        assert!(ok, "schema validation failed: {stderr}");
        let (ok, _) = validate(
            &written_json(write, &Profile::default()),
            "empty.speedscope.json",
        );
        assert!(ok, "an empty profile must be valid too");
        json["profiles"][0]["unit"] = Value::from("furlongs");
        let (ok, stderr) = validate(&json, "broken.speedscope.json");
        assert!(
            !ok && stderr.contains("ValidationError"),
            "bad unit accepted: {stderr}"
        );
    }
}
