//! The `file` backend (sysfs, procfs, files) on the fixture router (`tests/fixtures/router/`), on
//! temporary trees of junk, and on the real host's `/proc` and `/sys`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cwmpd::datamodel::backend::file::{check_key, FileBackend, MAX_FILE_BYTES, MAX_ROWS};
use cwmpd::datamodel::backend::{Backend, Cx, Platform};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/router")
}

fn backend(root: &Path) -> FileBackend {
    FileBackend::new(&Platform {
        root: root.to_path_buf(),
        ..Platform::default()
    })
}

/// Reads keys in one call.
fn read(b: &mut FileBackend, keys: &[&str]) -> Vec<Option<String>> {
    let mut values = BTreeMap::new();
    let mut cx = Cx {
        values: &mut values,
        changed: false,
    };
    let r = b.read(&mut cx, keys).expect("the file backend reads");
    assert_eq!(r.len(), keys.len());
    assert!(!cx.changed, "a read changes nothing");
    r
}

fn read1(b: &mut FileBackend, key: &str) -> Option<String> {
    read(b, &[key]).pop().flatten()
}

fn list(b: &mut FileBackend, table: &str) -> Vec<String> {
    let mut values = BTreeMap::new();
    let mut cx = Cx {
        values: &mut values,
        changed: false,
    };
    b.instances(&mut cx, table)
        .expect("a table key lists")
        .expect("the file backend lists its own instances")
}

/// A fresh temporary directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cwmpd-file-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    fs::write(p, content).expect("write");
}

/// The content of a fixture file, as a test expectation.
fn fixture_text(rel: &str) -> String {
    fs::read_to_string(fixture().join(rel)).expect("fixture file")
}

#[test]
fn whole_file_values_are_trimmed() {
    let mut b = backend(&fixture());
    let keys = [
        "/sys/class/net/lan1/address",
        "/sys/class/net/lan4/operstate",
        "/sys/class/net/wan/statistics/rx_bytes",
        "/proc/uptime",
        "/tmp/sysinfo/model",
    ];
    let got = read(&mut b, &keys);
    for (k, v) in keys.iter().zip(&got) {
        let want = fixture_text(k.trim_start_matches('/'));
        assert_eq!(v.as_deref(), Some(want.trim_end()), "{k}");
        assert!(!v.as_deref().unwrap_or("\n").ends_with('\n'));
    }
    assert_eq!(got[1].as_deref(), Some("down"));
    // The NUL separators of a command line read as spaces (a value must be printable XML).
    assert_eq!(
        read1(&mut b, "/proc/1476/cmdline").as_deref(),
        Some("/usr/sbin/dropbear -F -P /var/run/dropbear.1.pid -p 22 -K 300 -T 3")
    );
    // A kernel thread's empty command line is an empty value, not an absent one.
    assert_eq!(read1(&mut b, "/proc/2/cmdline").as_deref(), Some(""));
}

#[test]
fn field_values_of_colon_and_equals_files() {
    let mut b = backend(&fixture());
    let got = read(
        &mut b,
        &[
            "/proc/meminfo:MemTotal",
            "/proc/meminfo:MemFree",
            "/etc/openwrt_release:DISTRIB_RELEASE",
            "/etc/openwrt_release:DISTRIB_TAINTS",
            "/etc/os-release:PRETTY_NAME",
            "/proc/1/status:Name",
            "/proc/1105/status:VmRSS",
            "/proc/meminfo:Active(anon)",
        ],
    );
    let got: Vec<Option<&str>> = got.iter().map(|v| v.as_deref()).collect();
    assert_eq!(
        got,
        [
            Some("505068 kB"),
            Some("358212 kB"),
            // One pair of quotes is removed; an empty quoted value stays a value.
            Some("23.05.5"),
            Some(""),
            Some("OpenWrt 23.05.5"),
            Some("procd"),
            Some("1904 kB"),
            Some("1316 kB"),
        ]
    );
    // The same field of each process through an instance key, as the engine expands `{i}`.
    for pid in list(&mut b, "/proc/*?name=[0-9]*") {
        let name = read1(&mut b, &format!("/proc/{pid}/status:Name")).expect("Name");
        let stat = fixture_text(&format!("proc/{pid}/stat"));
        assert!(stat.contains(&format!("({name})")), "{pid}: {name}");
    }
}

#[test]
fn row_values_of_table_files() {
    let mut b = backend(&fixture());
    let route = "/proc/net/route#1+2+8;skip=1";
    let got = read(
        &mut b,
        &[
            &format!("{route}[wan/00000000/00000000].3"),
            &format!("{route}[br-lan/00000A0A/0000FFFF].3"),
            &format!("{route}[br-lan/0001A8C0/00FFFFFF].4"),
            "/etc/passwd#1;sep=:[nobody].3",
            "/etc/passwd#1;sep=:[root].7",
            "/tmp/dhcp.leases#2[f0:18:98:4e:5d:6c].4",
            "/tmp/dhcp.leases#2[da:a1:19:77:88:99].4",
            "/proc/2201/stat#1[2201].14",
        ],
    );
    let got: Vec<Option<&str>> = got.iter().map(|v| v.as_deref()).collect();
    assert_eq!(
        got,
        [
            Some("017100CB"),
            Some("0201A8C0"),
            Some("0001"),
            Some("65534"),
            Some("/bin/ash"),
            Some("laptop"),
            Some("*"),
            Some("534"),
        ]
    );
    // Each row agrees with the line of the file it came from.
    for line in fixture_text("etc/passwd").lines() {
        let cols: Vec<&str> = line.split(':').collect();
        for (c, want) in cols.iter().enumerate() {
            let key = format!("/etc/passwd#1;sep=:[{}].{}", cols[0], c + 1);
            assert_eq!(read1(&mut b, &key).as_deref(), Some(*want), "{key}");
        }
    }
}

#[test]
fn missing_things_have_no_value() {
    let mut b = backend(&fixture());
    let got = read(
        &mut b,
        &[
            "/sys/class/net/br-lan/speed",
            "/sys/class/net/phy0-ap0/duplex",
            "/sys/class/net/wlan9/address",
            "/proc/2/status:VmRSS",
            "/proc/meminfo:NoSuchField",
            "/etc/passwd#1;sep=:[nosuchuser].1",
            "/etc/passwd#1;sep=:[root].8",
            "/no/such/file#1[x].1",
            // A directory is not a value.
            "/sys/class/net/lo",
            // Table keys are not values.
            "/sys/class/net/*",
            "/etc/passwd#1;sep=:",
        ],
    );
    assert_eq!(got, vec![None; got.len()]);
    // A missing directory or table file lists nothing, and counts 0.
    assert!(list(&mut b, "/sys/class/nope/*").is_empty());
    assert!(list(&mut b, "/tmp/nope#1").is_empty());
    assert_eq!(
        read1(&mut b, "/sys/class/nope/*#count").as_deref(),
        Some("0")
    );
}

#[test]
fn directory_listings_with_each_condition_kind() {
    let mut b = backend(&fixture());
    let all = list(&mut b, "/sys/class/net/*");
    // Natural order, and the same set as the directory holds.
    assert_eq!(
        all,
        ["br-lan", "eth0", "lan1", "lan2", "lan3", "lan4", "lo", "phy0-ap0", "phy1-ap0", "wan"]
    );
    let mut on_disk: Vec<String> = fs::read_dir(fixture().join("sys/class/net"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk);

    // `SUB` and `!SUB`.
    assert_eq!(
        list(&mut b, "/sys/class/net/*?device&!phy80211"),
        ["eth0", "lan1", "lan2", "lan3", "lan4", "wan"]
    );
    assert_eq!(
        list(&mut b, "/sys/class/net/*?phy80211"),
        ["phy0-ap0", "phy1-ap0"]
    );
    assert_eq!(list(&mut b, "/sys/class/net/*?bridge"), ["br-lan"]);
    assert_eq!(list(&mut b, "/sys/class/net/*?brport/state=0"), ["lan4"]);
    // `SUB=VALUE` compares the trimmed content.
    assert_eq!(list(&mut b, "/sys/class/net/*?operstate=down"), ["lan4"]);
    assert_eq!(list(&mut b, "/sys/class/net/*?type=772"), ["lo"]);
    assert_eq!(list(&mut b, "/sys/class/net/*?speed=1000&!brport").len(), 2);
    // `name=GLOB`.
    assert_eq!(
        list(&mut b, "/sys/class/net/*?name=lan[0-9]"),
        ["lan1", "lan2", "lan3", "lan4"]
    );
    assert_eq!(
        list(&mut b, "/proc/*?name=[0-9]*"),
        ["1", "2", "412", "1105", "1287", "1476", "1893", "2201"]
    );
    assert_eq!(
        read1(&mut b, "/proc/*?name=[0-9]*#count").as_deref(),
        Some("8")
    );
    assert_eq!(
        read1(&mut b, "/sys/class/net/*?name=phy?-ap*#count").as_deref(),
        Some("2")
    );
    // Bridge ports, through an expanded instance key; `.keep` markers are never instances.
    assert_eq!(
        list(&mut b, "/sys/class/net/br-lan/brif/*"),
        ["lan1", "lan2", "lan3", "lan4", "phy0-ap0", "phy1-ap0"]
    );
    assert!(list(&mut b, "/sys/class/net/phy0-ap0/wireless/*").is_empty());
}

#[test]
fn table_files_with_skip_sep_and_where() {
    let mut b = backend(&fixture());
    assert_eq!(
        list(&mut b, "/proc/net/route#1+2+8;skip=1"),
        [
            "wan/00000000/00000000",
            "wan/007100CB/00FFFFFF",
            "br-lan/00000A0A/0000FFFF",
            "br-lan/0001A8C0/00FFFFFF"
        ]
    );
    // Without `skip` the header is a row too.
    assert_eq!(
        list(&mut b, "/proc/net/route#1")
            .first()
            .map(String::as_str),
        Some("Iface")
    );
    // Gateway routes only (flags 0003).
    assert_eq!(
        list(&mut b, "/proc/net/route#1+2;skip=1;where=4=0003"),
        ["wan/00000000", "br-lan/00000A0A"]
    );
    assert_eq!(
        list(&mut b, "/etc/passwd#1;sep=:"),
        ["root", "daemon", "ftp", "network", "nobody"]
    );
    assert_eq!(
        list(&mut b, "/etc/passwd#1;sep=:;where=7=/bin/ash"),
        ["root"]
    );
    // Comment and `search` lines are filtered out by `where`.
    assert_eq!(
        list(
            &mut b,
            "/tmp/resolv.conf.d/resolv.conf.auto#2;where=1=nameserver"
        ),
        ["203.0.113.53", "203.0.113.54", "2001:db8:53::1"]
    );
    // Two `where`s: complete ARP entries on br-lan.
    assert_eq!(
        list(&mut b, "/proc/net/arp#1;skip=1;where=3=0x2;where=6=br-lan"),
        [
            "192.168.1.10",
            "192.168.1.123",
            "192.168.1.11",
            "192.168.1.12"
        ]
    );
    let leases = list(&mut b, "/tmp/dhcp.leases#2");
    let want: Vec<String> = fixture_text("tmp/dhcp.leases")
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(leases, want);
    // A row value through the table's own instance keys.
    for mac in &leases {
        let ip = read1(&mut b, &format!("/tmp/dhcp.leases#2[{mac}].3")).unwrap();
        assert!(ip.starts_with("192.168.1."), "{mac} {ip}");
    }
}

#[test]
fn short_rows_duplicates_and_empty_lines() {
    let root = tmp("rows");
    write(
        &root,
        "t",
        "k1 a b\n\nk2 only\n   \nk1 dup dup\nk3 x y z\n:: ::\n",
    );
    write(&root, "c", "a,,c\n,x,y\nb,1\n");
    let mut b = backend(&root);
    // The second `k1` row is a duplicate key: the first one wins.
    assert_eq!(list(&mut b, "/t#1"), ["k1", "k2", "k3", "::"]);
    // Rows missing a key column are skipped; the key is the columns joined with `/`.
    assert_eq!(list(&mut b, "/t#1+3"), ["k1/b", "k1/dup", "k3/y"]);
    assert_eq!(read1(&mut b, "/t#1[k1].2").as_deref(), Some("a"));
    assert_eq!(read1(&mut b, "/t#1[k2].3"), None);
    // With a separator, empty columns are columns; an empty key is no row.
    assert_eq!(list(&mut b, "/c#1;sep=,"), ["a", "b"]);
    assert_eq!(read1(&mut b, "/c#1;sep=,[a].2").as_deref(), Some(""));
    assert_eq!(list(&mut b, "/c#2;sep=,"), ["x", "1"]);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn listings_and_rows_stay_until_invalidate_values_do_not() {
    let root = tmp("snapshot");
    write(&root, "sys/class/net/a/mtu", "1500\n");
    write(&root, "tmp/leases", "1 aa host-a\n");
    let mut b = backend(&root);
    assert_eq!(list(&mut b, "/sys/class/net/*"), ["a"]);
    assert_eq!(list(&mut b, "/tmp/leases#2"), ["aa"]);
    assert_eq!(
        read1(&mut b, "/sys/class/net/*#count").as_deref(),
        Some("1")
    );

    // The system changes between a GetParameterNames and the GetParameterValues.
    write(&root, "sys/class/net/b/mtu", "9000\n");
    write(&root, "tmp/leases", "1 bb host-b\n2 aa renamed\n");
    write(&root, "sys/class/net/a/mtu", "1400\n");

    assert_eq!(list(&mut b, "/sys/class/net/*"), ["a"]);
    assert_eq!(
        read1(&mut b, "/sys/class/net/*#count").as_deref(),
        Some("1")
    );
    assert_eq!(list(&mut b, "/tmp/leases#2"), ["aa"]);
    assert_eq!(
        read1(&mut b, "/tmp/leases#2[aa].3").as_deref(),
        Some("host-a")
    );
    assert_eq!(read1(&mut b, "/tmp/leases#2[bb].3"), None);
    // Single values are read afresh by each request.
    assert_eq!(
        read1(&mut b, "/sys/class/net/a/mtu").as_deref(),
        Some("1400")
    );

    b.invalidate();
    assert_eq!(list(&mut b, "/sys/class/net/*"), ["a", "b"]);
    assert_eq!(
        read1(&mut b, "/sys/class/net/*#count").as_deref(),
        Some("2")
    );
    assert_eq!(list(&mut b, "/tmp/leases#2"), ["bb", "aa"]);
    assert_eq!(
        read1(&mut b, "/tmp/leases#2[aa].3").as_deref(),
        Some("renamed")
    );

    // The end of a session drops the snapshot as well.
    fs::remove_dir_all(root.join("sys/class/net/a")).unwrap();
    assert_eq!(list(&mut b, "/sys/class/net/*"), ["a", "b"]);
    let mut values = BTreeMap::new();
    let mut cx = Cx {
        values: &mut values,
        changed: false,
    };
    assert!(b.end_session(&mut cx).is_empty());
    assert_eq!(list(&mut b, "/sys/class/net/*"), ["b"]);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn one_call_reads_each_file_once() {
    // `/proc/self/io` counts the bytes this process has read, reading it included: keys of it
    // in one call agree only if the file was read once, and a later call sees a new count.
    let mut b = backend(Path::new("/"));
    let first = read(
        &mut b,
        &[
            "/proc/self/io:rchar",
            "/proc/self/io",
            "/proc/self/io:rchar",
        ],
    );
    let Some(rchar) = first[0].clone() else {
        return; // A kernel without task I/O accounting.
    };
    assert_eq!(first[2].as_ref(), Some(&rchar));
    let whole = first[1].as_deref().expect("/proc/self/io");
    assert!(whole.starts_with(&format!("rchar: {rchar}\n")), "{whole}");
    let later = read1(&mut b, "/proc/self/io:rchar").expect("rchar");
    let (a, z): (u64, u64) = (rchar.parse().unwrap(), later.parse().unwrap());
    assert!(z > a, "a new call reads the file again: {a} then {z}");
}

#[test]
fn junk_content_never_panics() {
    let root = tmp("junk");
    // A deterministic byte soup: NULs, invalid UTF-8, separators, brackets, very long lines.
    let mut x: u32 = 0x1234_5678;
    let soup: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x % 11 {
                0 => b'\n',
                1 => b':',
                2 => b'=',
                3 => b' ',
                4 => 0,
                _ => (x >> 8) as u8,
            }
        })
        .collect();
    write(&root, "junk/soup", &soup);
    write(&root, "junk/long", vec![b'a'; 3 * MAX_FILE_BYTES]);
    write(
        &root,
        "junk/utf8",
        b"\xff\xfe\nName:\xc3\x28 x\n\xe2\x82:\x00\x01\x02\n",
    );
    write(&root, "junk/seps", ":::\n===\n\n#[].\n   \t\n");
    fs::create_dir_all(root.join("junk/dir")).unwrap();
    fs::create_dir_all(root.join("junk/dir/entry")).unwrap();
    write(&root, "junk/dir/entry/x", &soup[..5000]);
    // A FIFO must not block the reader (only regular files are opened).
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("junk/fifo"))
        .status()
        .is_ok_and(|s| s.success());

    let mut b = backend(&root);
    let files = ["soup", "long", "utf8", "seps", "dir", "fifo"];
    let mut keys = Vec::new();
    for f in files {
        for form in [
            "",
            ":Name",
            ":",
            ":a",
            "#1",
            "#1[x].1",
            "#2+1;skip=3;where=2=a[b].9",
            "#1;sep=:[].1",
            "#1;sep==",
            "/*",
            "/*?name=*&x=y#count",
        ] {
            keys.push(format!("/junk/{f}{form}"));
        }
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = read(&mut b, &refs);
    for (k, v) in refs.iter().zip(&got) {
        if let Some(v) = v {
            assert!(
                !v.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{k}: control characters in a value"
            );
            assert!(v.len() <= MAX_FILE_BYTES, "{k}");
        }
    }
    for table in [
        "/junk/soup#1",
        "/junk/soup#2;sep=:",
        "/junk/utf8#1",
        "/junk/dir/*?x",
    ] {
        assert!(list(&mut b, table).len() <= MAX_ROWS);
    }
    if fifo {
        assert_eq!(read1(&mut b, "/junk/fifo"), None);
    }
    assert_eq!(
        read1(&mut b, "/junk/utf8:Name").as_deref(),
        Some("\u{fffd}( x")
    );
    let _ = fs::remove_dir_all(&root);
}

/// Whether opening the FIFO `path` to read released a writer blocked in opening it: the writer
/// is a thread in `open(O_WRONLY)`, which returns only once some reader has opened the FIFO.
/// `read` runs once the writer is seen blocked in that call (`/proc/self/task/TID/syscall`),
/// so that a reader's open cannot come before it and go unnoticed.
fn opened_by(path: &Path, read: impl FnOnce()) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::time::{Duration, Instant};
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (tx, rx) = std::sync::mpsc::channel();
    let at = path.to_path_buf();
    let writer = std::thread::spawn(move || {
        let _ = tid_tx.send(nix::unistd::gettid().as_raw());
        let w = fs::OpenOptions::new().write(true).open(&at);
        let _ = tx.send(());
        drop(w);
    });
    let tid = tid_rx.recv().unwrap();
    // The first field is the number of the system call the thread is blocked in (`running`
    // while it runs): openat, or open where the C library still uses it.
    let opens: &[&str] = if cfg!(target_arch = "x86_64") {
        &["257", "2"]
    } else if cfg!(target_arch = "aarch64") {
        &["56"]
    } else {
        &[]
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        let first = text.split(' ').next().unwrap_or("");
        let blocked = if opens.is_empty() {
            first.parse::<u32>().is_ok()
        } else {
            opens.contains(&first)
        };
        if blocked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never blocked in open: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    read();
    let opened = rx.recv_timeout(Duration::from_secs(2)).is_ok();
    if !opened {
        // Release the writer: this test's own reader.
        let _r = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the writer released");
    }
    writer.join().unwrap();
    opened
}

#[test]
fn only_regular_files_are_opened_outside_sysfs_and_nothing_blocks() {
    let root = tmp("fifo-open");
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::create_dir_all(root.join("sys/class/net/lan1")).unwrap();
    for fifo in ["tmp/leases", "sys/class/net/lan1/carrier"] {
        let ok = std::process::Command::new("mkfifo")
            .arg(root.join(fifo))
            .status()
            .unwrap();
        assert!(ok.success(), "mkfifo {fifo}");
    }
    let mut b = backend(&root);
    // Outside sysfs (where a local account could leave a FIFO, or a link to a device), the
    // path is opened with O_PATH and looked at: the FIFO is never opened to read, its writer
    // stays blocked.
    let opened = opened_by(&root.join("tmp/leases"), || {
        assert_eq!(read1(&mut b, "/tmp/leases"), None);
    });
    assert!(!opened, "a FIFO outside sysfs was opened");
    // In sysfs the file is opened at once, without blocking, and refused once opened.
    b.invalidate();
    let opened = opened_by(&root.join("sys/class/net/lan1/carrier"), || {
        assert_eq!(read1(&mut b, "/sys/class/net/lan1/carrier"), None);
    });
    assert!(opened, "the sysfs path was looked at before it was opened");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn reads_are_bounded() {
    let root = tmp("bound");
    // Lines `kN=N` past the 1 MiB bound: only whole lines within it are seen.
    let mut text = String::new();
    let mut n = 0u32;
    while text.len() < 2 * MAX_FILE_BYTES {
        text.push_str(&format!("k{n}={n}\n"));
        n += 1;
    }
    write(&root, "big", &text);
    let last_in = text[..MAX_FILE_BYTES]
        .lines()
        .filter(|l| l.len() > 1)
        .count()
        - 1;
    // The last line may be cut by the bound: it is dropped, not read half.
    let cut = !text[..MAX_FILE_BYTES].ends_with('\n');
    let last_whole = if cut { last_in - 1 } else { last_in };
    // A file just within the bound is read whole.
    let small: String = text[..MAX_FILE_BYTES]
        .rsplit_once('\n')
        .map(|(a, _)| format!("{a}\n"))
        .unwrap();
    write(&root, "small", &small);
    let mut b = backend(&root);
    let got = read(
        &mut b,
        &[
            "/big:k0",
            &format!("/big:k{last_whole}"),
            &format!("/big:k{}", last_whole + 1),
            &format!("/big:k{}", n - 1),
            "/big",
            "/small",
        ],
    );
    assert_eq!(got[0].as_deref(), Some("0"));
    assert_eq!(got[1], Some(last_whole.to_string()));
    assert_eq!(got[2], None);
    assert_eq!(got[3], None);
    // A whole value cut by the bound would be wrong: none.
    assert_eq!(got[4], None);
    assert_eq!(got[5].as_deref().map(str::len), Some(small.len() - 1));
    // At most MAX_ROWS rows of a table file.
    let rows = list(&mut b, "/big#1;sep==");
    assert_eq!(rows.len(), MAX_ROWS);
    assert_eq!(
        rows.last().map(String::as_str),
        Some(format!("k{}", MAX_ROWS - 1).as_str())
    );
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn keys_cannot_leave_the_root() {
    let root = tmp("escape");
    write(&root, "inside/secret", "no\n");
    let mut b = backend(&root.join("inside/sub"));
    fs::create_dir_all(root.join("inside/sub")).unwrap();
    // A `..` that comes from an instance key or a nested reference reads as nothing.
    assert_eq!(read1(&mut b, "/../secret"), None);
    assert_eq!(read1(&mut b, "/x/../../secret:a"), None);
    assert!(list(&mut b, "/../*").is_empty());
    assert!(check_key("/../secret").is_err());
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn the_backend_is_read_only_and_checks_table_keys() {
    let mut b = backend(&fixture());
    assert!(!b.writable("/proc/uptime"));
    assert!(!b.creatable("/sys/class/net/*"));
    assert!(b.watch_paths().is_empty());
    let mut values = BTreeMap::new();
    let mut cx = Cx {
        values: &mut values,
        changed: false,
    };
    let e = b.instances(&mut cx, "/proc/uptime").unwrap_err();
    assert_eq!(e.code(), 9002);
    assert!(b.stage_set(&mut cx, "/proc/uptime", "1").is_err());
    assert!(b.stage_add(&mut cx, "/sys/class/net/*", 1).is_err());
    // check_key names the key and the reason.
    let m = check_key("/proc/net/route#1;bogus").unwrap_err();
    assert!(
        m.contains("/proc/net/route#1;bogus") && m.contains("bogus"),
        "{m}"
    );
    assert!(check_key("/sys/class/net/{i}/statistics/tx_bytes").is_ok());
}

#[test]
fn the_real_host() {
    // Any Linux has /proc/uptime and /sys/class/net with at least `lo`.
    let mut b = backend(Path::new("/"));
    let up = read1(&mut b, "/proc/uptime").expect("/proc/uptime");
    let secs: f64 = up
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds");
    assert!(secs > 0.0);
    assert!(read1(&mut b, "/proc/meminfo:MemTotal").is_some_and(|v| v.ends_with("kB")));
    let devs = list(&mut b, "/sys/class/net/*?ifindex");
    assert!(devs.iter().any(|d| d == "lo"), "{devs:?}");
    assert_eq!(
        read1(&mut b, "/sys/class/net/*?ifindex#count"),
        Some(devs.len().to_string())
    );
    for d in &devs {
        let idx = read1(&mut b, &format!("/sys/class/net/{d}/ifindex")).expect("ifindex");
        assert!(idx.parse::<u32>().is_ok(), "{d}: {idx}");
    }
    let procs: usize = read1(&mut b, "/proc/*?name=[0-9]*#count")
        .and_then(|v| v.parse().ok())
        .expect("count");
    assert!(procs >= 1);
    assert!(list(&mut b, "/proc/*?name=[0-9]*")
        .iter()
        .all(|p| p.bytes().all(|c| c.is_ascii_digit())));
}
