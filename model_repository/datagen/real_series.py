"""Real manga series: the ones customers actually name.

Titles, authors and English-language publishers are facts; what the store sells of them (volumes it stocks,
editions, prices, stock counts, release dates in the store's data) is generated like the rest of the catalog.
Two lists:

* :data:`CARRIED` -- series the store sells (they become catalog products);
* :data:`NOT_CARRIED` -- well-known series the store does *not* sell, so that "do you have Chainsaw Man?"
  can be declined as such instead of being answered with another series.

Each entry carries the names customers type for it: Japanese script, romaji, abbreviations and common
misspellings. Single common English words ("Monster", "Kingdom", "Akira") are left out on purpose: as a
bare word they would match ordinary sentences.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealSeries:
    name: str
    author: str
    aliases: tuple[str, ...]  # Japanese script first, then romaji / abbreviations / misspellings
    publisher: str = ""
    genres: tuple[str, ...] = ()
    setting: str = ""
    hero: str = ""
    ally: str = ""
    max_volumes: int = 12  # how many volumes the store stocks (the real run may be longer)


CARRIED: tuple[RealSeries, ...] = (
    RealSeries("One Piece", "Eiichiro Oda", ("ワンピース", "ONE PIECE", "wan pisu", "onepiece", "one peice"), "Viz Media",
               ("shonen", "adventure", "action"), "the Grand Line", "Monkey D. Luffy", "Roronoa Zoro", 18),
    RealSeries("Naruto", "Masashi Kishimoto", ("ナルト", "NARUTO", "naruto shippuden"), "Viz Media",
               ("shonen", "action", "adventure"), "the Hidden Leaf Village", "Naruto Uzumaki", "Sasuke Uchiha", 16),
    RealSeries("Berserk", "Kentaro Miura", ("ベルセルク", "berserk deluxe", "bersek"), "Dark Horse",
               ("seinen", "fantasy", "horror"), "a war-torn medieval kingdom", "Guts", "Griffith", 14),
    RealSeries("Vagabond", "Takehiko Inoue", ("バガボンド", "vagabound"), "Viz Media",
               ("seinen", "historical", "action"), "Sengoku-era Japan", "Miyamoto Musashi", "Takezo's rival Matahachi", 12),
    RealSeries("Frieren: Beyond Journey's End", "Kanehito Yamada and Tsukasa Abe",
               ("葬送のフリーレン", "sousou no frieren", "frieren", "furiiren", "freiren"), "Viz Media",
               ("fantasy", "adventure", "slice of life"), "a world after the demon king's defeat", "Frieren", "Fern", 12),
    RealSeries("Spy x Family", "Tatsuya Endo", ("スパイファミリー", "SPY×FAMILY", "spy family", "spyxfamily"), "Viz Media",
               ("shonen", "comedy", "action"), "the city of Berlint", "Loid Forger", "Anya Forger", 12),
    RealSeries("Jujutsu Kaisen", "Gege Akutami", ("呪術廻戦", "jjk", "jujutsu", "jujitsu kaisen"), "Viz Media",
               ("shonen", "action", "supernatural"), "Tokyo Jujutsu High", "Yuji Itadori", "Megumi Fushiguro", 16),
    RealSeries("Vinland Saga", "Makoto Yukimura", ("ヴィンランド・サガ", "vinland"), "Kodansha Comics",
               ("seinen", "historical", "action"), "Viking-age Europe", "Thorfinn", "Askeladd", 12),
    RealSeries("Blue Lock", "Muneyuki Kaneshiro and Yusuke Nomura", ("ブルーロック", "bluelock"), "Kodansha Comics",
               ("sports", "shonen"), "a striker training facility", "Yoichi Isagi", "Meguru Bachira", 14),
    RealSeries("Haikyu!!", "Haruichi Furudate", ("ハイキュー!!", "haikyuu", "haikyu", "haikyū"), "Viz Media",
               ("sports", "shonen", "comedy"), "Karasuno High School", "Shoyo Hinata", "Tobio Kageyama", 14),
    RealSeries("Dandadan", "Yukinobu Tatsu", ("ダンダダン", "dan da dan"), "Viz Media",
               ("shonen", "supernatural", "comedy"), "a town full of ghosts and aliens", "Momo Ayase", "Okarun", 10),
    RealSeries("Fruits Basket", "Natsuki Takaya", ("フルーツバスケット", "furuba", "fruit basket"), "Yen Press",
               ("shojo", "romance", "drama"), "the Soma family estate", "Tohru Honda", "Kyo Soma", 12),
    RealSeries("Nana", "Ai Yazawa", ("NANA", "ナナ"), "Viz Media",
               ("josei", "romance", "drama"), "Tokyo's punk scene", "Nana Osaki", "Nana Komatsu", 10),
    RealSeries("Yotsuba&!", "Kiyohiko Azuma", ("よつばと!", "yotsubato", "yotsuba"), "Yen Press",
               ("slice of life", "comedy"), "a quiet suburb", "Yotsuba Koiwai", "Fuka Ayase", 12),
    RealSeries("Oshi no Ko", "Aka Akasaka and Mengo Yokoyari", ("【推しの子】", "推しの子", "oshinoko", "my star"), "Yen Press",
               ("seinen", "drama", "mystery"), "the Japanese entertainment industry", "Aqua Hoshino", "Ruby Hoshino", 12),
    RealSeries("Kaguya-sama: Love Is War", "Aka Akasaka", ("かぐや様は告らせたい", "kaguya sama", "kaguya-sama", "love is war"),
               "Viz Media", ("romance", "comedy", "seinen"), "Shuchiin Academy's student council", "Kaguya Shinomiya",
               "Miyuki Shirogane", 14),
    RealSeries("Delicious in Dungeon", "Ryoko Kui", ("ダンジョン飯", "dungeon meshi", "delicious in the dungeon"), "Yen Press",
               ("fantasy", "cooking", "comedy"), "a monster-filled dungeon", "Laios", "Marcille", 12),
    RealSeries("Death Note", "Tsugumi Ohba and Takeshi Obata", ("デスノート", "DEATH NOTE", "deathnote"), "Viz Media",
               ("shonen", "mystery", "psychological"), "modern-day Tokyo", "Light Yagami", "L", 12),
    RealSeries("Attack on Titan", "Hajime Isayama", ("進撃の巨人", "shingeki no kyojin", "aot", "snk", "attack on titans"),
               "Kodansha Comics", ("shonen", "action", "horror"), "a walled city besieged by Titans", "Eren Yeager",
               "Mikasa Ackerman", 16),
    RealSeries("Demon Slayer: Kimetsu no Yaiba", "Koyoharu Gotouge", ("鬼滅の刃", "kimetsu no yaiba", "demon slayer", "kimetsu"),
               "Viz Media", ("shonen", "action", "supernatural"), "Taisho-era Japan", "Tanjiro Kamado", "Nezuko Kamado", 16),
    RealSeries("Mob Psycho 100", "ONE", ("モブサイコ100", "mob psycho"), "Dark Horse",
               ("shonen", "comedy", "supernatural"), "Seasoning City", "Shigeo Kageyama", "Arataka Reigen", 10),
    RealSeries("Witch Hat Atelier", "Kamome Shirahama", ("とんがり帽子のアトリエ", "tongari boushi no atelier", "witch hat"),
               "Kodansha Comics", ("fantasy", "shojo", "adventure"), "a world where magic is drawn", "Coco", "Qifrey", 12),
    RealSeries("Blue Period", "Tsubasa Yamaguchi", ("ブルーピリオド",), "Kodansha Comics",
               ("seinen", "drama", "slice of life"), "a Tokyo art-school entrance race", "Yatora Yaguchi", "Yuka Ayukawa", 12),
    RealSeries("Golden Kamuy", "Satoru Noda", ("ゴールデンカムイ", "golden kamui"), "Viz Media",
               ("seinen", "historical", "adventure"), "Hokkaido after the Russo-Japanese War", "Saichi Sugimoto", "Asirpa", 14),
    RealSeries("Uzumaki", "Junji Ito", ("うずまき", "uzamaki"), "Viz Media",
               ("horror", "seinen"), "the spiral-cursed town of Kurouzu-cho", "Kirie Goshima", "Shuichi Saito", 3),
    RealSeries("Sailor Moon", "Naoko Takeuchi", ("美少女戦士セーラームーン", "セーラームーン", "bishoujo senshi sailor moon"),
               "Kodansha Comics", ("shojo", "fantasy", "romance"), "Azabu-Juban, Tokyo", "Usagi Tsukino", "Ami Mizuno", 12),
    RealSeries("Slam Dunk", "Takehiko Inoue", ("スラムダンク", "SLAM DUNK", "slamdunk"), "Viz Media",
               ("sports", "shonen", "comedy"), "Shohoku High School", "Hanamichi Sakuragi", "Kaede Rukawa", 14),
    RealSeries("Horimiya", "HERO and Daisuke Hagiwara", ("ホリミヤ",), "Yen Press",
               ("romance", "shojo", "slice of life"), "a suburban high school", "Kyoko Hori", "Izumi Miyamura", 12),
    RealSeries("Pluto: Urasawa x Tezuka", "Naoki Urasawa and Osamu Tezuka", ("PLUTO", "プルートウ", "pluto urasawa"),
               "Viz Media", ("seinen", "sci-fi", "mystery"), "a future Europe of robots", "Gesicht", "Atom", 8),
)

NOT_CARRIED: tuple[RealSeries, ...] = (
    RealSeries("Chainsaw Man", "Tatsuki Fujimoto", ("チェンソーマン", "csm", "chainsawman", "chainsaw-man", "chain saw man"), genres=("shonen", "action", "horror", "supernatural")),
    RealSeries("My Hero Academia", "Kohei Horikoshi", ("僕のヒーローアカデミア", "boku no hero academia", "mha", "bnha", "hero academia"), genres=("shonen", "action", "supernatural")),
    RealSeries("Tokyo Ghoul", "Sui Ishida", ("東京喰種", "tokyo ghoul re", "tokyoghoul"), genres=("seinen", "horror", "psychological", "supernatural")),
    RealSeries("Hunter x Hunter", "Yoshihiro Togashi", ("ハンター×ハンター", "HUNTER×HUNTER", "hxh", "hunterxhunter", "hunter hunter"), genres=("shonen", "action", "adventure", "fantasy")),
    RealSeries("Bleach", "Tite Kubo", ("BLEACH", "ブリーチ"), genres=("shonen", "action", "supernatural")),
    RealSeries("Dragon Ball", "Akira Toriyama", ("ドラゴンボール", "dragonball", "dragon ball z", "dbz", "dragon ball super"), genres=("shonen", "action", "adventure", "comedy")),
    RealSeries("20th Century Boys", "Naoki Urasawa", ("20世紀少年", "twentieth century boys"), genres=("seinen", "mystery", "psychological", "sci-fi")),
    RealSeries("One-Punch Man", "ONE and Yusuke Murata", ("ワンパンマン", "one punch man", "onepunchman", "opm"), genres=("seinen", "action", "comedy")),
    RealSeries("Komi Can't Communicate", "Tomohito Oda", ("古見さんは、コミュ症です。", "komi san", "komi-san", "komi cant communicate"), genres=("shonen", "comedy", "slice of life", "romance")),
    RealSeries("Dorohedoro", "Q Hayashida", ("ドロヘドロ",), genres=("seinen", "fantasy", "horror", "comedy")),
    RealSeries("Hellsing", "Kouta Hirano", ("HELLSING", "ヘルシング"), genres=("seinen", "horror", "action", "supernatural")),
    RealSeries("Solo Leveling", "Chugong", ("俺だけレベルアップな件", "na honjaman level up", "sololeveling"), genres=("action", "fantasy", "adventure")),
    RealSeries("Kaiju No. 8", "Naoya Matsumoto", ("怪獣8号", "kaiju no 8", "kaiju number 8", "kaijuu 8"), genres=("shonen", "action", "sci-fi")),
    RealSeries("Sakamoto Days", "Yuto Suzuki", ("SAKAMOTO DAYS", "サカモトデイズ", "sakamotodays"), genres=("shonen", "action", "comedy", "crime")),
    RealSeries("Fullmetal Alchemist", "Hiromu Arakawa", ("鋼の錬金術師", "hagane no renkinjutsushi", "fma", "full metal alchemist"), genres=("shonen", "adventure", "fantasy", "action")),
    RealSeries("Tokyo Revengers", "Ken Wakui", ("東京卍リベンジャーズ", "tokyo manji revengers"), genres=("shonen", "action", "crime", "drama")),
    RealSeries("JoJo's Bizarre Adventure", "Hirohiko Araki", ("ジョジョの奇妙な冒険", "jojo", "jojos bizarre adventure", "jojo bizarre adventure"), genres=("shonen", "action", "adventure", "supernatural")),
    RealSeries("Bocchi the Rock!", "Aki Hamaji", ("ぼっち・ざ・ろっく!", "bocchi the rock", "bocchi"), genres=("comedy", "music", "slice of life")),
    RealSeries("Blue Exorcist", "Kazue Kato", ("青の祓魔師", "ao no exorcist"), genres=("shonen", "action", "supernatural", "fantasy")),
    RealSeries("Black Clover", "Yuki Tabata", ("ブラッククローバー", "blackclover"), genres=("shonen", "action", "fantasy")),
)


def japanese_names() -> tuple[str, ...]:
    """The Japanese-script name of every real series (carried or not), for Japanese intent templates."""
    out = []
    for s in (*CARRIED, *NOT_CARRIED):
        ja = next((a for a in s.aliases if any(ord(ch) > 0x3000 for ch in a)), None)
        if ja:
            out.append(ja)
    return tuple(out)
