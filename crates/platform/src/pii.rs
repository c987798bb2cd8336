//! Personal data handling: validated citizen ID numbers (GB 11643-1999), masking for display
//! and logs, and encryption at rest plus blind indexes so sensitive values can be stored
//! encrypted yet still found by exact match.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::{Date, Month};

// ---------------------------------------------------------------------------------------------
// Citizen ID
// ---------------------------------------------------------------------------------------------

/// ISO 7064 MOD 11-2 weights for the first 17 characters (GB 11643-1999 §6.2).
const CHECK_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARACTERS: &[u8; 11] = b"10X98765432";

/// Province-level prefixes of GB/T 2260 (including 71 Taiwan, 81 Hong Kong, 82 Macao, which
/// appear on residence permits). County digits are deliberately not checked: an ID keeps the
/// county code in force when it was issued, and many of those codes have since been retired.
const PROVINCE_CODES: &[&str] = &[
    "11", "12", "13", "14", "15", // 华北
    "21", "22", "23", // 东北
    "31", "32", "33", "34", "35", "36", "37", // 华东
    "41", "42", "43", "44", "45", "46", // 中南
    "50", "51", "52", "53", "54", // 西南
    "61", "62", "63", "64", "65", // 西北
    "71", "81", "82",
];

/// Lower bound for the birth date. The standard's own worked example (`440524188001010014`) is
/// born in 1880, so 1900 would reject a valid vector; the check digit already catches any single
/// mistyped year digit, so this bound only has to stop nonsense such as year 0980.
const EARLIEST_BIRTH_DATE: Date = time::macros::date!(1800 - 01 - 01);

/// A 公民身份号码 that has passed every structural check. The only way to obtain one is
/// [`CitizenId::parse`], so holding one means the number is well formed.
///
/// `Debug` and `Display` print the masked form so the clear number never reaches a log line by
/// accident; use [`CitizenId::as_str`] where the clear value is really needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CitizenId {
    value: String,
    birth_date: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitizenIdError {
    #[error("the citizen ID number is empty")]
    Empty,
    #[error("a citizen ID number has 18 characters, this one has {len}")]
    WrongLength { len: usize },
    #[error("this is a 15-digit first-generation ID number; convert it to the 18-digit form")]
    LegacyFifteenDigit,
    #[error("a citizen ID number has 17 digits followed by a digit or X; this one has another character")]
    InvalidCharacter,
    #[error("the citizen ID number starts with {province}, which is not a province-level code")]
    UnknownProvince { province: String },
    #[error("the birth date in the citizen ID number is not a valid date")]
    InvalidBirthDate,
    #[error("the birth date in the citizen ID number is in the future")]
    FutureBirthDate,
    #[error("the check character of the citizen ID number does not match")]
    CheckCharacter,
}

impl CitizenIdError {
    /// A sentence in Simplified Chinese telling the clerk what to correct.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "未填写身份证号码，请输入18位公民身份号码".to_owned(),
            Self::WrongLength { len } => {
                format!("身份证号码应为18位，当前输入为{len}位，请核对后重新输入")
            }
            Self::LegacyFifteenDigit => {
                "这是15位的第一代身份证号码，请换算为18位号码或以本人第二代身份证为准后重新输入".to_owned()
            }
            Self::InvalidCharacter => "身份证号码前17位只能是数字，最后一位是数字或字母X，请核对后重新输入".to_owned(),
            Self::UnknownProvince { province } => {
                format!("身份证号码前两位“{province}”不是有效的省级行政区划代码，请核对后重新输入")
            }
            Self::InvalidBirthDate => "身份证号码第7至14位的出生日期不是有效日期，请核对后重新输入".to_owned(),
            Self::FutureBirthDate => "身份证号码中的出生日期晚于今天，请核对后重新输入".to_owned(),
            Self::CheckCharacter => "身份证号码校验位不正确，请核对后重新输入".to_owned(),
        }
    }
}

impl CitizenId {
    /// Validates and normalizes a citizen ID number. `today` bounds the birth date; it is passed
    /// in rather than read from the system clock so callers use the service's clock.
    pub fn parse(input: &str, today: Date) -> Result<CitizenId, CitizenIdError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(CitizenIdError::Empty);
        }
        let len = trimmed.chars().count();
        if len == 15 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CitizenIdError::LegacyFifteenDigit);
        }
        if len != 18 {
            return Err(CitizenIdError::WrongLength { len });
        }
        // 18 chars but more than 18 bytes means a non-ASCII character somewhere.
        let bytes = trimmed.as_bytes();
        if bytes.len() != 18 {
            return Err(CitizenIdError::InvalidCharacter);
        }
        let (body, check) = bytes.split_at(17);
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(CitizenIdError::InvalidCharacter);
        }
        let check = check[0].to_ascii_uppercase();
        if !(check.is_ascii_digit() || check == b'X') {
            return Err(CitizenIdError::InvalidCharacter);
        }

        let province = &trimmed[..2];
        if !PROVINCE_CODES.contains(&province) {
            return Err(CitizenIdError::UnknownProvince {
                province: province.to_owned(),
            });
        }

        let birth_date = birth_date_from_digits(&body[6..14])?;
        if birth_date < EARLIEST_BIRTH_DATE {
            return Err(CitizenIdError::InvalidBirthDate);
        }
        if birth_date > today {
            return Err(CitizenIdError::FutureBirthDate);
        }

        if check_character(body) != check {
            return Err(CitizenIdError::CheckCharacter);
        }

        let mut value = String::with_capacity(18);
        value.push_str(&trimmed[..17]);
        value.push(char::from(check));
        Ok(CitizenId { value, birth_date })
    }

    /// The normalized 18 characters, with an uppercase `X`. This is the clear value: do not log it.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// Odd sequence digit (the 17th character) means male, even means female.
    pub fn sex(&self) -> Sex {
        if self.value.as_bytes()[16] % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The 6-digit county code in force when the number was issued; it may no longer exist.
    pub fn issuing_region_code(&self) -> &str {
        &self.value[..6]
    }

    pub fn province_code(&self) -> &str {
        &self.value[..2]
    }

    pub fn masked(&self) -> String {
        mask_citizen_id(&self.value)
    }
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CitizenId").field(&self.masked()).finish()
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `digits` must be 8 ASCII digits (YYYYMMDD); the caller has checked that.
fn birth_date_from_digits(digits: &[u8]) -> Result<Date, CitizenIdError> {
    let number =
        |range: std::ops::Range<usize>| digits[range].iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let year = i32::try_from(number(0..4)).map_err(|_| CitizenIdError::InvalidBirthDate)?;
    let month = u8::try_from(number(4..6))
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(CitizenIdError::InvalidBirthDate)?;
    let day = u8::try_from(number(6..8)).map_err(|_| CitizenIdError::InvalidBirthDate)?;
    Date::from_calendar_date(year, month, day).map_err(|_| CitizenIdError::InvalidBirthDate)
}

/// `body` must be the first 17 characters, all ASCII digits.
pub(crate) fn check_character(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip(CHECK_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARACTERS[(sum % 11) as usize]
}

// ---------------------------------------------------------------------------------------------
// Masking
// ---------------------------------------------------------------------------------------------

/// Keeps the first `head` and last `tail` characters and stars the rest. Works on chars so a
/// multi-byte character is never split.
fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let len = s.chars().count();
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= len.saturating_sub(tail) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

fn all_stars(s: &str) -> String {
    "*".repeat(s.chars().count())
}

/// `370402198001011234` → `3704*************4`: the province and city, and the check
/// character. A masked view also shows the registered county, the sex and the birth year and
/// month, so keeping the sequence digits (the old 4 + 4) left only the birth day unknown — about
/// three IDs fit, one lookup each. With 4 + 1 about 1,400 fit (31 days × 500 sequences of the
/// sex, one in 11 passing the check). 8 characters or fewer would show too much of a short
/// value, so they become all stars.
pub fn mask_citizen_id(s: &str) -> String {
    if s.chars().count() <= 8 {
        all_stars(s)
    } else {
        mask_middle(s, 4, 1)
    }
}

/// Keeps the surname's first character: `张三` → `张*`, `欧阳娜娜` → `欧***`. A one-character
/// value is starred entirely because keeping it would show the whole name.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.clone().next()) {
        (None, _) => String::new(),
        (Some(_), None) => "*".to_owned(),
        (Some(first), Some(_)) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
    }
}

/// Bank and social-security card numbers keep their first 4 digits (the issuer) and last 4
/// (what a payee recognizes): `6217000012341234` → `6217********1234`. A number of 12 digits or
/// fewer keeps only its last 4, so at least 8 stay hidden whatever its length.
pub fn mask_account_number(s: &str) -> String {
    if s.chars().count() > 12 {
        mask_middle(s, 4, 4)
    } else {
        mask_middle(s, 0, 4)
    }
}

/// 11-digit mobile numbers → `138****1234`; anything else keeps its last 4 characters when it
/// is long enough that those 4 don't give most of it away.
pub fn mask_phone(s: &str) -> String {
    let len = s.chars().count();
    if len == 11 && s.bytes().all(|b| b.is_ascii_digit()) {
        mask_middle(s, 3, 4)
    } else if len > 6 {
        mask_middle(s, 0, 4)
    } else {
        all_stars(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Encryption at rest and blind indexes
// ---------------------------------------------------------------------------------------------

type HmacSha256 = Hmac<Sha256>;

/// Envelope layout produced by [`DataKeys::encrypt`]:
///
/// ```text
/// byte 0       format version (1)
/// byte 1       algorithm id (1 = AES-256-GCM; SM4 will get its own id)
/// byte 2       n = key id length, 1..=64
/// 3 .. 3+n     key id, ASCII [A-Za-z0-9._-]
/// next 12      random nonce
/// rest         ciphertext followed by the 16-byte GCM tag
/// ```
///
/// The AEAD associated data is the header (bytes `0 .. 3+n`) followed by the caller's `aad`,
/// so the version, algorithm and key id are authenticated along with the context. The header
/// encodes its own length, so the concatenation is unambiguous.
const ENVELOPE_VERSION: u8 = 1;
const ALGORITHM_AES_256_GCM: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiCryptoError {
    #[error("no data key with id {key_id:?} is loaded")]
    UnknownKey { key_id: String },
    #[error("the encrypted value is not a valid envelope")]
    MalformedEnvelope,
    #[error("the encrypted value uses unsupported algorithm id {0}")]
    UnsupportedAlgorithm(u8),
    #[error("the encrypted value could not be decrypted: wrong key or context, or it was altered")]
    DecryptionFailed,
    #[error("the value could not be encrypted")]
    EncryptionFailed,
    #[error("data key {key_id:?} is invalid: a key is 32 bytes with a unique id of 1-64 characters A-Z a-z 0-9 . _ -")]
    InvalidKeyMaterial { key_id: String },
    #[error("no data keys are configured")]
    NoKeys,
    #[error("the active data key is not among the configured keys")]
    ActiveKeyMissing,
}

/// A keyed hash of a sensitive value, stored next to its ciphertext so rows can be found by
/// exact match without decrypting. The version names the index key that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex {
    pub version: u32,
    pub digest: [u8; 32],
}

impl BlindIndex {
    /// `"{version}:{64 lowercase hex}"`, the form stored and compared in the database.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(11 + 1 + 64);
        let _ = write!(out, "{}:", self.version);
        for b in self.digest {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

/// The loaded data keys. Keys are held only as initialized cipher / MAC states, never as raw
/// bytes, and `Debug` shows ids and counts only.
pub struct DataKeys {
    encryption_keys: BTreeMap<String, Aes256Gcm>,
    active_encryption_key: String,
    index_keys: BTreeMap<u32, HmacSha256>,
    active_index_version: u32,
    // A copy of the active entry of `index_keys`, so hashing needs no fallible lookup.
    active_index_key: HmacSha256,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeys")
            .field("active_encryption_key", &self.active_encryption_key)
            .field("encryption_keys", &self.encryption_keys.len())
            .field("active_index_version", &self.active_index_version)
            .field("index_versions", &self.index_keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn is_valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn index_key_name(version: u32) -> String {
    format!("index-v{version}")
}

impl DataKeys {
    /// Old keys stay in the lists after rotation so existing ciphertexts and blind indexes keep
    /// working; only the active ones are used for new values. Duplicate ids or versions are
    /// refused because a lookup by id would then be ambiguous.
    pub fn new(
        encryption_keys: Vec<(String, [u8; 32])>,
        active_encryption_key_id: &str,
        index_keys: Vec<(u32, [u8; 32])>,
        active_index_version: u32,
    ) -> Result<DataKeys, PiiCryptoError> {
        if encryption_keys.is_empty() || index_keys.is_empty() {
            return Err(PiiCryptoError::NoKeys);
        }

        let mut ciphers = BTreeMap::new();
        for (id, key) in encryption_keys {
            if !is_valid_key_id(&id) || ciphers.contains_key(&id) {
                return Err(PiiCryptoError::InvalidKeyMaterial { key_id: id });
            }
            let cipher = Aes256Gcm::new_from_slice(&key)
                .map_err(|_| PiiCryptoError::InvalidKeyMaterial { key_id: id.clone() })?;
            ciphers.insert(id, cipher);
        }

        let mut macs = BTreeMap::new();
        for (version, key) in index_keys {
            if macs.contains_key(&version) {
                return Err(PiiCryptoError::InvalidKeyMaterial {
                    key_id: index_key_name(version),
                });
            }
            let mac = <HmacSha256 as Mac>::new_from_slice(&key).map_err(|_| PiiCryptoError::InvalidKeyMaterial {
                key_id: index_key_name(version),
            })?;
            macs.insert(version, mac);
        }

        if !ciphers.contains_key(active_encryption_key_id) {
            return Err(PiiCryptoError::ActiveKeyMissing);
        }
        let active_index_key = macs
            .get(&active_index_version)
            .cloned()
            .ok_or(PiiCryptoError::ActiveKeyMissing)?;

        Ok(DataKeys {
            encryption_keys: ciphers,
            active_encryption_key: active_encryption_key_id.to_owned(),
            index_keys: macs,
            active_index_version,
            active_index_key,
        })
    }

    pub fn active_encryption_key_id(&self) -> &str {
        &self.active_encryption_key
    }

    pub fn active_index_version(&self) -> u32 {
        self.active_index_version
    }

    /// Every loaded encryption key's id (the active one and those kept for reading), in order.
    pub fn encryption_key_ids(&self) -> impl Iterator<Item = &str> {
        self.encryption_keys.keys().map(String::as_str)
    }

    /// Every loaded index key's version, oldest first.
    pub fn index_versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.index_keys.keys().copied()
    }

    /// Encrypts with the active key. `aad` should name where the value lives (e.g.
    /// `"person.citizen_id"`) so a ciphertext copied to another column fails to decrypt.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, PiiCryptoError> {
        let key_id = self.active_encryption_key.as_bytes();
        let cipher = self
            .encryption_keys
            .get(&self.active_encryption_key)
            .ok_or(PiiCryptoError::ActiveKeyMissing)?;
        // Validated to 1..=64 bytes at construction, so this never fails.
        let key_id_len = u8::try_from(key_id.len()).map_err(|_| PiiCryptoError::EncryptionFailed)?;

        let mut envelope = Vec::with_capacity(3 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        envelope.extend_from_slice(&[ENVELOPE_VERSION, ALGORITHM_AES_256_GCM, key_id_len]);
        envelope.extend_from_slice(key_id);
        let header_len = envelope.len();

        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        envelope.extend_from_slice(&nonce);

        let full_aad = [&envelope[..header_len], aad].concat();
        let ciphertext = cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| PiiCryptoError::EncryptionFailed)?;
        envelope.extend_from_slice(&ciphertext);
        Ok(envelope)
    }

    /// Decrypts with whichever loaded key the envelope names, so values written before a key
    /// rotation stay readable.
    pub fn decrypt(&self, envelope: &[u8], aad: &[u8]) -> Result<Vec<u8>, PiiCryptoError> {
        let [version, algorithm, key_id_len, rest @ ..] = envelope else {
            return Err(PiiCryptoError::MalformedEnvelope);
        };
        if *version != ENVELOPE_VERSION {
            return Err(PiiCryptoError::MalformedEnvelope);
        }
        if *algorithm != ALGORITHM_AES_256_GCM {
            return Err(PiiCryptoError::UnsupportedAlgorithm(*algorithm));
        }
        let key_id_len = usize::from(*key_id_len);
        if key_id_len == 0 || key_id_len > MAX_KEY_ID_LEN || rest.len() < key_id_len + NONCE_LEN + TAG_LEN {
            return Err(PiiCryptoError::MalformedEnvelope);
        }
        let (key_id, rest) = rest.split_at(key_id_len);
        let key_id = std::str::from_utf8(key_id)
            .ok()
            .filter(|id| is_valid_key_id(id))
            .ok_or(PiiCryptoError::MalformedEnvelope)?;
        let cipher = self
            .encryption_keys
            .get(key_id)
            .ok_or_else(|| PiiCryptoError::UnknownKey {
                key_id: key_id.to_owned(),
            })?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| PiiCryptoError::MalformedEnvelope)?;
        let header = &envelope[..3 + key_id_len];
        let full_aad = [header, aad].concat();
        cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| PiiCryptoError::DecryptionFailed)
    }

    /// The blind index under the active index key, to store with a newly written value.
    /// Callers normalize first (e.g. [`CitizenId::as_str`]) so equal values index equally.
    pub fn blind_index(&self, value: &str) -> BlindIndex {
        BlindIndex {
            version: self.active_index_version,
            digest: hmac_digest(&self.active_index_key, value.as_bytes()),
        }
    }

    /// One blind index per loaded index key, active version first and then newest to oldest,
    /// so a lookup during a rotation finds rows not yet re-indexed.
    pub fn blind_indexes(&self, value: &str) -> Vec<BlindIndex> {
        let mut out = Vec::with_capacity(self.index_keys.len());
        out.push(self.blind_index(value));
        out.extend(
            self.index_keys
                .iter()
                .rev()
                .filter(|(version, _)| **version != self.active_index_version)
                .map(|(version, mac)| BlindIndex {
                    version: *version,
                    digest: hmac_digest(mac, value.as_bytes()),
                }),
        );
        out
    }

    /// A keyed digest of several fields, to tell whether plaintext changed without decrypting.
    /// Each part is prefixed with its length (u32 big-endian) so `("ab","c")` and `("a","bc")`
    /// differ. The digest follows the active index key, so after an index-key rotation every
    /// stored digest reads as "changed" once.
    pub fn keyed_hash(&self, parts: &[&str]) -> [u8; 32] {
        let mut mac = self.active_index_key.clone();
        for part in parts {
            // Parts longer than 4 GiB cannot occur for database fields; saturating keeps the
            // function total instead of panicking.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            mac.update(&len.to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

fn hmac_digest(mac: &HmacSha256, data: &[u8]) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key file as stored on disk (e.g. JSON). Keys are standard base64 of 32 bytes.
#[derive(Serialize, Deserialize)]
pub struct DataKeyFile {
    pub encryption_keys: Vec<EncryptionKeyEntry>,
    pub active_encryption_key: String,
    pub index_keys: Vec<IndexKeyEntry>,
    pub active_index_version: u32,
}

#[derive(Serialize, Deserialize)]
pub struct EncryptionKeyEntry {
    pub id: String,
    pub key_base64: String,
}

#[derive(Serialize, Deserialize)]
pub struct IndexKeyEntry {
    pub version: u32,
    pub key_base64: String,
}

// Hand-written so a stray `{:?}` on the key file cannot print key material.
impl fmt::Debug for DataKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeyFile")
            .field("encryption_keys", &self.encryption_keys)
            .field("active_encryption_key", &self.active_encryption_key)
            .field("index_keys", &self.index_keys)
            .field("active_index_version", &self.active_index_version)
            .finish()
    }
}

impl fmt::Debug for EncryptionKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKeyEntry")
            .field("id", &self.id)
            .field("key_base64", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for IndexKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexKeyEntry")
            .field("version", &self.version)
            .field("key_base64", &"<redacted>")
            .finish()
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

fn decode_key(encoded: &str, key_id: impl FnOnce() -> String) -> Result<[u8; 32], PiiCryptoError> {
    BASE64
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| PiiCryptoError::InvalidKeyMaterial { key_id: key_id() })
}

impl DataKeyFile {
    /// A fresh key file with one encryption key and index key version 1.
    pub fn generate() -> DataKeyFile {
        let mut suffix = [0u8; 4];
        OsRng.fill_bytes(&mut suffix);
        let id = format!("dk-{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
        DataKeyFile {
            encryption_keys: vec![EncryptionKeyEntry {
                id: id.clone(),
                key_base64: BASE64.encode(random_key()),
            }],
            active_encryption_key: id,
            index_keys: vec![IndexKeyEntry {
                version: 1,
                key_base64: BASE64.encode(random_key()),
            }],
            active_index_version: 1,
        }
    }

    pub fn into_keys(self) -> Result<DataKeys, PiiCryptoError> {
        let encryption_keys = self
            .encryption_keys
            .into_iter()
            .map(|entry| {
                let key = decode_key(&entry.key_base64, || entry.id.clone())?;
                Ok((entry.id, key))
            })
            .collect::<Result<Vec<_>, PiiCryptoError>>()?;
        let index_keys = self
            .index_keys
            .into_iter()
            .map(|entry| {
                let key = decode_key(&entry.key_base64, || index_key_name(entry.version))?;
                Ok((entry.version, key))
            })
            .collect::<Result<Vec<_>, PiiCryptoError>>()?;
        DataKeys::new(
            encryption_keys,
            &self.active_encryption_key,
            index_keys,
            self.active_index_version,
        )
    }
}

/// The data keys' file name in a keys directory.
pub const DATA_KEYS_FILE: &str = "data-keys.json";

impl DataKeyFile {
    /// Reads the data keys, refusing a file that group or others can read: whoever holds them
    /// and a copy of a database reads every citizen ID in it.
    pub fn load(path: &std::path::Path) -> Result<DataKeys, crate::key_files::KeyError> {
        use crate::key_files::KeyError;
        crate::key_files::check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let file: DataKeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        file.into_keys().map_err(|e| invalid(e.to_string()))
    }

    /// Creates a data-key file (mode 0600) unless one is there; returns whether it did.
    pub fn ensure(path: &std::path::Path) -> Result<bool, crate::key_files::KeyError> {
        if path.exists() {
            return Ok(false);
        }
        let text = serde_json::to_string_pretty(&DataKeyFile::generate()).map_err(|e| {
            crate::key_files::KeyError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        crate::key_files::write_file(path, text.as_bytes(), 0o600)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 15);

    fn parse(s: &str) -> Result<CitizenId, CitizenIdError> {
        CitizenId::parse(s, TODAY)
    }

    /// Builds a valid ID from a 17-digit body by appending the correct check character.
    fn with_check(body: &str) -> String {
        let c = check_character(body.as_bytes());
        format!("{body}{}", char::from(c))
    }

    // --- citizen ID ---------------------------------------------------------------------------

    #[test]
    fn the_standard_vectors_are_accepted() {
        for s in ["11010519491231002X", "440524188001010014", "34052419800101001X"] {
            let id = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.as_str(), s);
        }
    }

    #[test]
    fn lowercase_x_is_stored_as_uppercase() {
        let id = parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, parse("11010519491231002X").unwrap());
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        let id = parse("  34052419800101001X\t\n").unwrap();
        assert_eq!(id.as_str(), "34052419800101001X");
    }

    #[test]
    fn a_wrong_check_character_is_refused() {
        assert_eq!(parse("340524198001010013"), Err(CitizenIdError::CheckCharacter));
    }

    #[test]
    fn the_check_character_error_does_not_reveal_the_expected_character() {
        let err = parse("340524198001010013").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the check character of the citizen ID number does not match"
        );
        assert_eq!(err.message_zh(), "身份证号码校验位不正确，请核对后重新输入");
    }

    #[test]
    fn an_empty_or_blank_input_is_refused() {
        assert_eq!(parse(""), Err(CitizenIdError::Empty));
        assert_eq!(parse("   "), Err(CitizenIdError::Empty));
    }

    #[test]
    fn a_fifteen_digit_id_is_refused_as_legacy() {
        let err = parse("340524800101001").unwrap_err();
        assert_eq!(err, CitizenIdError::LegacyFifteenDigit);
        assert!(err.message_zh().contains("15位"));
        assert!(err.message_zh().contains("18位"));
    }

    #[test]
    fn seventeen_digits_is_a_wrong_length() {
        assert_eq!(parse("34052419800101001"), Err(CitizenIdError::WrongLength { len: 17 }));
    }

    #[test]
    fn fifteen_characters_with_a_letter_is_a_wrong_length_not_legacy() {
        assert_eq!(parse("34052480010100X"), Err(CitizenIdError::WrongLength { len: 15 }));
    }

    #[test]
    fn letters_in_the_middle_are_refused() {
        assert_eq!(parse("3405241980A101001X"), Err(CitizenIdError::InvalidCharacter));
        assert_eq!(parse("34052419800101001Y"), Err(CitizenIdError::InvalidCharacter));
    }

    #[test]
    fn multibyte_characters_are_counted_as_characters() {
        // Full-width digits: 18 characters, each 3 bytes.
        assert_eq!(
            parse("３４０５２４１９８００１０１００１Ｘ"),
            Err(CitizenIdError::InvalidCharacter)
        );
        assert_eq!(parse("张三"), Err(CitizenIdError::WrongLength { len: 2 }));
    }

    #[test]
    fn an_unknown_province_is_refused() {
        let s = with_check("99052419800101001");
        let err = parse(&s).unwrap_err();
        assert_eq!(
            err,
            CitizenIdError::UnknownProvince {
                province: "99".to_owned()
            }
        );
        assert!(err.message_zh().contains("“99”"));
    }

    #[test]
    fn every_listed_province_is_accepted_and_neighbours_are_not() {
        for p in PROVINCE_CODES {
            assert!(parse(&with_check(&format!("{p}052419800101001"))).is_ok(), "{p}");
        }
        for p in [
            "10", "16", "20", "24", "30", "38", "40", "47", "49", "55", "60", "66", "70", "72", "80", "83", "91",
        ] {
            assert_eq!(
                parse(&with_check(&format!("{p}052419800101001"))),
                Err(CitizenIdError::UnknownProvince { province: p.to_owned() }),
                "{p}"
            );
        }
    }

    #[test]
    fn county_digits_are_not_checked_against_a_table() {
        // 340524 and 440524 are retired county codes; 349999 never existed.
        assert!(parse(&with_check("34999919800101001")).is_ok());
    }

    #[test]
    fn february_thirtieth_is_not_a_birth_date() {
        assert_eq!(
            parse(&with_check("34052419800230001")),
            Err(CitizenIdError::InvalidBirthDate)
        );
    }

    #[test]
    fn month_thirteen_and_day_zero_are_not_birth_dates() {
        assert_eq!(
            parse(&with_check("34052419801301001")),
            Err(CitizenIdError::InvalidBirthDate)
        );
        assert_eq!(
            parse(&with_check("34052419800100001")),
            Err(CitizenIdError::InvalidBirthDate)
        );
    }

    #[test]
    fn a_leap_day_is_a_birth_date() {
        let id = parse(&with_check("34052420000229001")).unwrap();
        assert_eq!(id.birth_date(), date!(2000 - 02 - 29));
        assert_eq!(
            parse(&with_check("34052419000229001")),
            Err(CitizenIdError::InvalidBirthDate)
        );
    }

    #[test]
    fn a_birth_date_before_1800_is_refused() {
        assert_eq!(
            parse(&with_check("34052417991231001")),
            Err(CitizenIdError::InvalidBirthDate)
        );
    }

    #[test]
    fn a_birth_date_after_today_is_refused() {
        assert_eq!(
            parse(&with_check("34052420250616001")),
            Err(CitizenIdError::FutureBirthDate)
        );
    }

    #[test]
    fn a_birth_date_of_today_is_accepted() {
        let id = parse(&with_check("34052420250615001")).unwrap();
        assert_eq!(id.birth_date(), TODAY);
    }

    #[test]
    fn accessors_read_the_fields_of_the_number() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.issuing_region_code(), "110105");
        assert_eq!(id.province_code(), "11");
        assert_eq!(id.masked(), "1101*************X");

        let id = parse("440524188001010014").unwrap();
        assert_eq!(id.birth_date(), date!(1880 - 01 - 01));
        assert_eq!(id.sex(), Sex::Male);
        assert_eq!(id.issuing_region_code(), "440524");
        assert_eq!(id.province_code(), "44");
    }

    #[test]
    fn debug_output_never_contains_the_clear_id() {
        let id = parse("34052419800101001X").unwrap();
        let debug = format!("{id:?}");
        assert_eq!(debug, "CitizenId(\"3405*************X\")");
        assert!(!debug.contains("34052419800101001X"));
        assert!(!format!("{id:#?}").contains("19800101"));
        assert_eq!(id.to_string(), "3405*************X");
    }

    #[test]
    fn error_messages_never_contain_the_input() {
        let inputs = [
            "340524198001010013".to_owned(),
            with_check("34052420250616001"),
            with_check("34052419800230001"),
            "3405241980A101001X".to_owned(),
            "3405241980010100".to_owned(),
        ];
        for input in &inputs {
            let err = parse(input).unwrap_err();
            for text in [err.to_string(), err.message_zh(), format!("{err:?}")] {
                assert!(!text.contains(&input[..10]), "{text}");
            }
        }
    }

    #[test]
    fn every_error_has_a_chinese_message() {
        let errors = [
            CitizenIdError::Empty,
            CitizenIdError::WrongLength { len: 17 },
            CitizenIdError::LegacyFifteenDigit,
            CitizenIdError::InvalidCharacter,
            CitizenIdError::UnknownProvince {
                province: "99".to_owned(),
            },
            CitizenIdError::InvalidBirthDate,
            CitizenIdError::FutureBirthDate,
            CitizenIdError::CheckCharacter,
        ];
        for err in errors {
            let zh = err.message_zh();
            assert!(zh.contains("身份证号码"), "{zh}");
        }
        assert_eq!(
            CitizenIdError::WrongLength { len: 17 }.message_zh(),
            "身份证号码应为18位，当前输入为17位，请核对后重新输入"
        );
    }

    // --- masking ------------------------------------------------------------------------------

    #[test]
    fn a_citizen_id_keeps_four_characters_at_each_end() {
        assert_eq!(mask_citizen_id("37040219800101123X"), "3704*************X");
        assert_eq!(mask_citizen_id("123456789"), "1234****9");
    }

    #[test]
    fn a_short_citizen_id_is_all_stars() {
        assert_eq!(mask_citizen_id(""), "");
        assert_eq!(mask_citizen_id("1"), "*");
        assert_eq!(mask_citizen_id("12345678"), "********");
    }

    #[test]
    fn masking_a_citizen_id_counts_characters_not_bytes() {
        assert_eq!(mask_citizen_id("三四五六七八九十一"), "三四五六****一");
        assert_eq!(mask_citizen_id("一二三"), "***");
    }

    #[test]
    fn a_name_keeps_only_the_surname_character() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("Li Lei"), "L*****");
    }

    #[test]
    fn a_one_character_name_is_a_single_star() {
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name("a"), "*");
    }

    #[test]
    fn an_empty_name_stays_empty() {
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn a_mobile_number_keeps_three_and_four_digits() {
        assert_eq!(mask_phone("13812341234"), "138****1234");
    }

    #[test]
    fn other_phone_numbers_keep_the_last_four_when_long_enough() {
        assert_eq!(mask_phone("010-12345678"), "********5678");
        assert_eq!(mask_phone("1234567"), "***4567");
        assert_eq!(mask_phone("123456"), "******");
        assert_eq!(mask_phone("1"), "*");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("电话一二三四五六"), "****三四五六");
    }

    // --- data keys ----------------------------------------------------------------------------

    fn keys() -> DataKeys {
        DataKeys::new(vec![("dk-a".to_owned(), [1; 32])], "dk-a", vec![(1, [2; 32])], 1).unwrap()
    }

    const AAD: &[u8] = b"person.citizen_id";

    #[test]
    fn a_value_round_trips_through_encryption() {
        let keys = keys();
        let envelope = keys.encrypt(b"34052419800101001X", AAD).unwrap();
        assert_eq!(keys.decrypt(&envelope, AAD).unwrap(), b"34052419800101001X");
    }

    #[test]
    fn an_empty_value_round_trips() {
        let keys = keys();
        let envelope = keys.encrypt(b"", AAD).unwrap();
        assert_eq!(envelope.len(), 3 + 4 + NONCE_LEN + TAG_LEN);
        assert_eq!(keys.decrypt(&envelope, AAD).unwrap(), b"");
    }

    #[test]
    fn the_envelope_names_version_algorithm_and_key() {
        let envelope = keys().encrypt(b"abc", AAD).unwrap();
        assert_eq!(&envelope[..7], &[1, 1, 4, b'd', b'k', b'-', b'a']);
        assert_eq!(envelope.len(), 7 + NONCE_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn the_same_id_gives_the_same_blind_index_and_different_ciphertexts() {
        let keys = keys();
        let a = keys.encrypt(b"34052419800101001X", AAD).unwrap();
        let b = keys.encrypt(b"34052419800101001X", AAD).unwrap();
        assert_ne!(a, b);
        assert_ne!(a[7..7 + NONCE_LEN], b[7..7 + NONCE_LEN]);
        assert_eq!(
            keys.blind_index("34052419800101001X"),
            keys.blind_index("34052419800101001X")
        );
        assert_ne!(
            keys.blind_index("34052419800101001X"),
            keys.blind_index("11010519491231002X")
        );
    }

    #[test]
    fn the_blind_index_is_hmac_sha256_of_the_value() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". The key is
        // zero-padded to 32 bytes, which HMAC treats identically to the 4-byte key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let keys = DataKeys::new(vec![("k".to_owned(), [0; 32])], "k", vec![(7, key)], 7).unwrap();
        assert_eq!(
            keys.blind_index("what do ya want for nothing?").to_hex(),
            "7:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn wrong_aad_fails_to_decrypt() {
        let keys = keys();
        let envelope = keys.encrypt(b"6222021234567890", b"person.bank_account").unwrap();
        assert_eq!(
            keys.decrypt(&envelope, b"person.citizen_id"),
            Err(PiiCryptoError::DecryptionFailed)
        );
        assert_eq!(keys.decrypt(&envelope, b""), Err(PiiCryptoError::DecryptionFailed));
    }

    #[test]
    fn a_tampered_envelope_fails() {
        let keys = keys();
        let envelope = keys.encrypt(b"34052419800101001X", AAD).unwrap();
        for i in 0..envelope.len() {
            let mut tampered = envelope.clone();
            tampered[i] ^= 0x01;
            assert!(keys.decrypt(&tampered, AAD).is_err(), "byte {i}");
        }
        let mut truncated = envelope.clone();
        truncated.pop();
        assert_eq!(keys.decrypt(&truncated, AAD), Err(PiiCryptoError::DecryptionFailed));
    }

    #[test]
    fn a_header_change_to_another_loaded_key_id_fails() {
        let keys = DataKeys::new(
            vec![("dk-a".to_owned(), [1; 32]), ("dk-b".to_owned(), [1; 32])],
            "dk-a",
            vec![(1, [2; 32])],
            1,
        )
        .unwrap();
        let mut envelope = keys.encrypt(b"secret", AAD).unwrap();
        // Same key bytes under both ids: only header authentication can catch the swap.
        envelope[6] = b'b';
        assert_eq!(keys.decrypt(&envelope, AAD), Err(PiiCryptoError::DecryptionFailed));
    }

    #[test]
    fn malformed_envelopes_are_reported_as_such() {
        let keys = keys();
        assert_eq!(keys.decrypt(&[], AAD), Err(PiiCryptoError::MalformedEnvelope));
        assert_eq!(keys.decrypt(&[1, 1], AAD), Err(PiiCryptoError::MalformedEnvelope));
        let good = keys.encrypt(b"x", AAD).unwrap();

        let mut bad_version = good.clone();
        bad_version[0] = 2;
        assert_eq!(keys.decrypt(&bad_version, AAD), Err(PiiCryptoError::MalformedEnvelope));

        let mut sm4 = good.clone();
        sm4[1] = 2;
        assert_eq!(keys.decrypt(&sm4, AAD), Err(PiiCryptoError::UnsupportedAlgorithm(2)));

        let mut zero_len_id = good.clone();
        zero_len_id[2] = 0;
        assert_eq!(keys.decrypt(&zero_len_id, AAD), Err(PiiCryptoError::MalformedEnvelope));

        let mut long_id = good.clone();
        long_id[2] = 65;
        assert_eq!(keys.decrypt(&long_id, AAD), Err(PiiCryptoError::MalformedEnvelope));

        let mut bad_id_char = good.clone();
        bad_id_char[4] = b'/';
        assert_eq!(keys.decrypt(&bad_id_char, AAD), Err(PiiCryptoError::MalformedEnvelope));

        assert_eq!(
            keys.decrypt(&good[..3 + 4 + NONCE_LEN + TAG_LEN - 1], AAD),
            Err(PiiCryptoError::MalformedEnvelope)
        );
    }

    #[test]
    fn an_envelope_for_an_unloaded_key_names_the_key() {
        let old = keys();
        let envelope = old.encrypt(b"x", AAD).unwrap();
        let other = DataKeys::new(vec![("dk-z".to_owned(), [9; 32])], "dk-z", vec![(1, [2; 32])], 1).unwrap();
        assert_eq!(
            other.decrypt(&envelope, AAD),
            Err(PiiCryptoError::UnknownKey {
                key_id: "dk-a".to_owned()
            })
        );
    }

    #[test]
    fn a_ciphertext_decrypts_with_a_rotated_out_key() {
        let before = keys();
        let old_envelope = before.encrypt(b"34052419800101001X", AAD).unwrap();

        let after = DataKeys::new(
            vec![("dk-a".to_owned(), [1; 32]), ("dk-b".to_owned(), [3; 32])],
            "dk-b",
            vec![(1, [2; 32]), (2, [4; 32])],
            2,
        )
        .unwrap();
        assert_eq!(after.decrypt(&old_envelope, AAD).unwrap(), b"34052419800101001X");
        let new_envelope = after.encrypt(b"34052419800101001X", AAD).unwrap();
        assert_eq!(&new_envelope[3..7], b"dk-b");
        assert_eq!(
            before.decrypt(&new_envelope, AAD),
            Err(PiiCryptoError::UnknownKey {
                key_id: "dk-b".to_owned()
            })
        );
    }

    #[test]
    fn blind_indexes_cover_every_version_with_the_active_one_first() {
        let before = keys();
        let after = DataKeys::new(
            vec![("dk-a".to_owned(), [1; 32])],
            "dk-a",
            vec![(1, [2; 32]), (2, [4; 32]), (3, [5; 32])],
            2,
        )
        .unwrap();
        let all = after.blind_indexes("34052419800101001X");
        assert_eq!(all.iter().map(|b| b.version).collect::<Vec<_>>(), vec![2, 3, 1]);
        assert_eq!(all[0], after.blind_index("34052419800101001X"));
        // A row indexed before the rotation is still found.
        assert_eq!(all[2], before.blind_index("34052419800101001X"));
        assert_ne!(all[0].digest, all[2].digest);
    }

    #[test]
    fn blind_index_hex_form_is_version_colon_64_hex() {
        let index = BlindIndex {
            version: 12,
            digest: [0xab; 32],
        };
        assert_eq!(index.to_hex(), format!("12:{}", "ab".repeat(32)));
        let real = keys().blind_index("x").to_hex();
        assert_eq!(real.len(), 2 + 64);
        assert!(real.starts_with("1:"));
        assert!(real[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn keyed_hash_separates_parts_by_length() {
        let keys = keys();
        assert_ne!(keys.keyed_hash(&["ab", "c"]), keys.keyed_hash(&["a", "bc"]));
        assert_ne!(keys.keyed_hash(&["abc"]), keys.keyed_hash(&["abc", ""]));
        assert_eq!(keys.keyed_hash(&["张三", "x"]), keys.keyed_hash(&["张三", "x"]));
        // Matches HMAC over the documented encoding.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[2; 32]).unwrap();
        mac.update(&[0, 0, 0, 2]);
        mac.update(b"ab");
        mac.update(&[0, 0, 0, 1]);
        mac.update(b"c");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(keys.keyed_hash(&["ab", "c"]), expected);
    }

    #[test]
    fn keyed_hash_depends_on_the_key() {
        let other = DataKeys::new(vec![("dk-a".to_owned(), [1; 32])], "dk-a", vec![(1, [3; 32])], 1).unwrap();
        assert_ne!(keys().keyed_hash(&["a"]), other.keyed_hash(&["a"]));
    }

    #[test]
    fn construction_refuses_missing_or_bad_keys() {
        let enc = || vec![("dk-a".to_owned(), [1; 32])];
        let idx = || vec![(1, [2; 32])];
        assert_eq!(
            DataKeys::new(vec![], "dk-a", idx(), 1).unwrap_err(),
            PiiCryptoError::NoKeys
        );
        assert_eq!(
            DataKeys::new(enc(), "dk-a", vec![], 1).unwrap_err(),
            PiiCryptoError::NoKeys
        );
        assert_eq!(
            DataKeys::new(enc(), "dk-b", idx(), 1).unwrap_err(),
            PiiCryptoError::ActiveKeyMissing
        );
        assert_eq!(
            DataKeys::new(enc(), "dk-a", idx(), 2).unwrap_err(),
            PiiCryptoError::ActiveKeyMissing
        );
        for bad in [
            String::new(),
            "a".repeat(65),
            "dk a".to_owned(),
            "密钥".to_owned(),
            "dk/a".to_owned(),
        ] {
            assert_eq!(
                DataKeys::new(vec![(bad.clone(), [1; 32])], &bad, idx(), 1).unwrap_err(),
                PiiCryptoError::InvalidKeyMaterial { key_id: bad }
            );
        }
        assert!(DataKeys::new(vec![("a".repeat(64), [1; 32])], &"a".repeat(64), idx(), 1).is_ok());
        assert!(DataKeys::new(vec![("Dk_1.x-Y".to_owned(), [1; 32])], "Dk_1.x-Y", idx(), 1).is_ok());
    }

    #[test]
    fn duplicate_key_ids_and_versions_are_refused() {
        assert_eq!(
            DataKeys::new(
                vec![("dk-a".to_owned(), [1; 32]), ("dk-a".to_owned(), [3; 32])],
                "dk-a",
                vec![(1, [2; 32])],
                1
            )
            .unwrap_err(),
            PiiCryptoError::InvalidKeyMaterial {
                key_id: "dk-a".to_owned()
            }
        );
        assert_eq!(
            DataKeys::new(
                vec![("dk-a".to_owned(), [1; 32])],
                "dk-a",
                vec![(1, [2; 32]), (1, [3; 32])],
                1
            )
            .unwrap_err(),
            PiiCryptoError::InvalidKeyMaterial {
                key_id: "index-v1".to_owned()
            }
        );
    }

    #[test]
    fn a_64_character_key_id_round_trips() {
        let id = "k".repeat(64);
        let keys = DataKeys::new(vec![(id.clone(), [1; 32])], &id, vec![(1, [2; 32])], 1).unwrap();
        let envelope = keys.encrypt(b"v", AAD).unwrap();
        assert_eq!(envelope[2], 64);
        assert_eq!(keys.decrypt(&envelope, AAD).unwrap(), b"v");
    }

    #[test]
    fn debug_output_of_keys_shows_no_key_material() {
        let keys = DataKeys::new(
            vec![("dk-a".to_owned(), [0xAB; 32]), ("dk-b".to_owned(), [0xCD; 32])],
            "dk-b",
            vec![(1, [0xEF; 32])],
            1,
        )
        .unwrap();
        assert_eq!(
            format!("{keys:?}"),
            "DataKeys { active_encryption_key: \"dk-b\", encryption_keys: 2, active_index_version: 1, index_versions: [1] }"
        );

        let file = DataKeyFile::generate();
        let debug = format!("{file:?}");
        assert!(!debug.contains(&file.encryption_keys[0].key_base64));
        assert!(!debug.contains(&file.index_keys[0].key_base64));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn a_generated_key_file_round_trips_through_json() {
        let file = DataKeyFile::generate();
        let id = file.active_encryption_key.clone();
        assert_eq!(id.len(), 11);
        assert!(id.starts_with("dk-"));
        assert!(id[3..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(file.encryption_keys[0].id, id);
        assert_eq!(file.active_index_version, 1);
        assert_eq!(file.index_keys[0].version, 1);
        assert_eq!(BASE64.decode(&file.encryption_keys[0].key_base64).unwrap().len(), 32);

        let json = serde_json::to_string(&file).unwrap();
        let keys = file.into_keys().unwrap();
        let envelope = keys.encrypt(b"hello", AAD).unwrap();

        let reloaded: DataKeyFile = serde_json::from_str(&json).unwrap();
        let reloaded = reloaded.into_keys().unwrap();
        assert_eq!(reloaded.active_encryption_key_id(), id);
        assert_eq!(reloaded.decrypt(&envelope, AAD).unwrap(), b"hello");
        assert_eq!(reloaded.blind_index("v"), keys.blind_index("v"));
    }

    #[test]
    fn two_generated_key_files_differ() {
        let a = DataKeyFile::generate();
        let b = DataKeyFile::generate();
        assert_ne!(a.encryption_keys[0].key_base64, b.encryption_keys[0].key_base64);
        assert_ne!(a.index_keys[0].key_base64, b.index_keys[0].key_base64);
        assert_ne!(a.encryption_keys[0].key_base64, a.index_keys[0].key_base64);
    }

    #[test]
    fn a_key_file_with_a_short_key_names_the_key_not_the_material() {
        let short = BASE64.encode([7u8; 31]);
        let file = DataKeyFile {
            encryption_keys: vec![EncryptionKeyEntry {
                id: "dk-short".to_owned(),
                key_base64: short.clone(),
            }],
            active_encryption_key: "dk-short".to_owned(),
            index_keys: vec![IndexKeyEntry {
                version: 1,
                key_base64: BASE64.encode([1u8; 32]),
            }],
            active_index_version: 1,
        };
        let err = file.into_keys().unwrap_err();
        assert_eq!(
            err,
            PiiCryptoError::InvalidKeyMaterial {
                key_id: "dk-short".to_owned()
            }
        );
        assert!(!err.to_string().contains(&short));

        let file = DataKeyFile {
            encryption_keys: vec![EncryptionKeyEntry {
                id: "dk-a".to_owned(),
                key_base64: BASE64.encode([1u8; 32]),
            }],
            active_encryption_key: "dk-a".to_owned(),
            index_keys: vec![IndexKeyEntry {
                version: 3,
                key_base64: "not base64!".to_owned(),
            }],
            active_index_version: 3,
        };
        assert_eq!(
            file.into_keys().unwrap_err(),
            PiiCryptoError::InvalidKeyMaterial {
                key_id: "index-v3".to_owned()
            }
        );
    }
}
