//! Deterministic synthetic rosters (demo, tests, benchmarks), like `shared/tools/gen_roster.py`: every
//! identity and account number is valid by its check rule and belongs to no real person.
use serde_json::{Value, json};

/// SplitMix64: small, fast, the same numbers on every platform and release.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const SURNAMES: &str = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文";
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂玉萍毅浩宇轩然博文子涵欣怡梓萱雨泽俊春梅淑珍凤国庆建华志海燕红德福";
const ACCOUNT_BANKS: [&str; 6] = [
    "402241000015",
    "103241000018",
    "403241000011",
    "105241000012",
    "102241000019",
    "104241000016",
];
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u64; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ID_WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

fn pick(s: &str, rng: &mut Rng) -> char {
    let chars: Vec<char> = s.chars().collect();
    chars[rng.below(chars.len() as u64) as usize]
}

/// A valid resident ID unique per `(seed, seq)`.
pub fn resident_id(seed: u64, seq: u64) -> String {
    let n = (seed * 10_000_000 + seq).wrapping_mul(982_451_653) % (60 * 24_000 * 1000);
    let place = 220_100 + (n % 60) * 7 % 900;
    let days = (n / 60) % 24_000;
    let serial = n / 60 / 24_000 % 1000;
    let birth = time::Date::from_calendar_date(1940, time::Month::January, 1)
        .unwrap_or(time::Date::MIN)
        + time::Duration::days(i64::try_from(days).unwrap_or(0));
    let body = format!(
        "{place:06}{:04}{:02}{:02}{serial:03}",
        birth.year(),
        u8::from(birth.month()),
        birth.day()
    );
    let sum: u64 = body
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(c, w)| u64::from(c - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// A valid unified social credit code unique per `(seed, seq)`.
pub fn uscc(seed: u64, seq: u64, region: &str) -> String {
    let mut n = (seed * 10_000_000 + seq).wrapping_mul(7_919) % 31u64.pow(9);
    let mut org = [b'0'; 9];
    for slot in org.iter_mut().rev() {
        *slot = USCC_CHARS[(n % 31) as usize];
        n /= 31;
    }
    let body = format!("93{region}{}", String::from_utf8_lossy(&org));
    let sum: u64 = body
        .bytes()
        .zip(USCC_WEIGHTS)
        .map(|(c, w)| USCC_CHARS.iter().position(|x| *x == c).unwrap_or(0) as u64 * w)
        .sum();
    let check = USCC_CHARS[((31 - sum % 31) % 31) as usize] as char;
    format!("{body}{check}")
}

/// Completes a digit string with its Luhn check digit.
pub fn luhn_complete(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Kinds of broken items, cycled through by `bad`.
pub const BAD_KINDS: [&str; 5] = [
    "id_checksum",
    "luhn",
    "unit_personal",
    "zero_amount",
    "duplicate",
];

/// Roster options.
#[derive(Debug, Clone)]
pub struct RosterSpec {
    /// Items.
    pub items: u64,
    /// Seed.
    pub seed: u64,
    /// Items broken on purpose.
    pub bad: u64,
    /// Platform batch number.
    pub batch_no: String,
    /// Budget year.
    pub year: i32,
    /// Payout bank.
    pub payout_bank: String,
    /// Funds day `YYYY-MM-DD`.
    pub funds_arrived_on: String,
}

/// The roster header (without items).
pub fn header(spec: &RosterSpec, items: &[Value]) -> Value {
    let total: i64 = items.iter().filter_map(|i| i["amount_fen"].as_i64()).sum();
    json!({
        "batch_no": spec.batch_no, "department_code": "220623-NYNC", "region_code": "220623",
        "subsidy_code": "NY001", "subsidy_name": "耕地地力保护补贴", "budget_year": spec.year,
        "period": spec.year.to_string(), "indicator_no": format!("吉财农指〔{}〕4号", spec.year), "supervised": true,
        "payout_bank": spec.payout_bank, "payer_account": {"no": "0711012345678901", "name": "县财政局惠民惠农代发专户"},
        "funds_arrived_on": spec.funds_arrived_on, "total_count": items.len(), "total_amount_fen": total,
    })
}

/// One item, `seq` from 1.
pub fn item(seed: u64, seq: u64) -> Value {
    let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(seq));
    let phone = format!("1{}{:09}", 3 + rng.below(7), rng.below(1_000_000_000));
    let bank = ACCOUNT_BANKS[rng.below(6) as usize];
    if rng.below(100) < 5 {
        let name = format!("农安县{}氏种植专业合作社", pick(SURNAMES, &mut rng));
        return json!({"seq": seq, "recipient_kind": "unit", "name": name, "id_no": uscc(seed, seq, "220623"),
            "account_no": format!("{:016}", (seed * 10_000_000 + seq).wrapping_mul(4_410_317) % 10u64.pow(16)),
            "account_kind": "corporate", "account_bank_code": bank, "amount_fen": 10_000 + rng.below(4_990_000),
            "phone": phone, "ssc_exempt": false, "memo": ""});
    }
    let mut name = String::new();
    name.push(pick(SURNAMES, &mut rng));
    for _ in 0..(1 + rng.below(2)) {
        name.push(pick(GIVEN, &mut rng));
    }
    let prefix = ["623052", "621700", "622848", "621799"][rng.below(4) as usize];
    let account = luhn_complete(&format!(
        "{prefix}{:012}",
        (seed * 10_000_000 + seq).wrapping_mul(2_654_435_761) % 10u64.pow(12)
    ));
    json!({"seq": seq, "recipient_kind": "person", "name": name, "id_no": resident_id(seed, seq),
        "account_no": account, "account_kind": "ssc", "account_bank_code": bank, "amount_fen": 100 + rng.below(299_900),
        "phone": phone, "ssc_exempt": false, "memo": format!("{}月", 1 + rng.below(12))})
}

/// Breaks an item on purpose (`kind` of [`BAD_KINDS`]); `previous` is the item before it.
pub fn break_item(it: &mut Value, kind: &str, previous: Option<&Value>) {
    match kind {
        "id_checksum" => {
            if let Some(id) = it["id_no"].as_str().map(str::to_owned) {
                let last = if id.ends_with('0') { '1' } else { '0' };
                it["id_no"] = json!(format!("{}{last}", &id[..id.len() - 1]));
            }
        }
        "luhn" => {
            if let Some(a) = it["account_no"].as_str().map(str::to_owned) {
                let d = a.as_bytes()[a.len() - 1] - b'0';
                it["account_no"] = json!(format!("{}{}", &a[..a.len() - 1], (d + 1) % 10));
                it["account_kind"] = json!("ssc");
                it["recipient_kind"] = json!("person");
            }
        }
        "unit_personal" => {
            it["recipient_kind"] = json!("unit");
            it["id_no"] = json!(uscc(99, it["seq"].as_u64().unwrap_or(0), "220623"));
            it["account_kind"] = json!("personal");
            it["account_no"] = json!(luhn_complete("621700123456789"));
        }
        "zero_amount" => it["amount_fen"] = json!(0),
        "duplicate" => {
            if let Some(p) = previous {
                for k in [
                    "recipient_kind",
                    "name",
                    "id_no",
                    "account_no",
                    "account_kind",
                    "account_bank_code",
                ] {
                    it[k] = p[k].clone();
                }
            }
        }
        _ => {}
    }
}

/// A whole roster as JSON items.
pub fn items(spec: &RosterSpec) -> Vec<Value> {
    let mut out: Vec<Value> = (1..=spec.items).map(|s| item(spec.seed, s)).collect();
    let n = out.len() as u64;
    for k in 0..spec.bad.min(n.saturating_sub(1)) {
        let idx = (1 + (k * 7919 + 3) % (n - 1)) as usize;
        let prev = out[idx - 1].clone();
        break_item(&mut out[idx], BAD_KINDS[(k % 5) as usize], Some(&prev));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::rules::identity;

    #[test]
    fn generated_numbers_pass_their_checks() {
        for seq in 1..500 {
            identity::check_resident_id(&resident_id(3, seq)).expect("id");
            identity::check_uscc(&uscc(3, seq, "220623")).expect("uscc");
        }
        identity::check_card_account(&luhn_complete("621700123456789")).expect("luhn");
    }
}
