#!/bin/sh
# ACME tweaks: the worked example of a cwmpd vendor script (see README "Vendor extensions").
#
# cwmpd calls it once per request with every key it needs:
#   acme.sh get                 stdin: KEY lines        stdout: ok<TAB>KEY<TAB>VALUE | fault<TAB>KEY<TAB>CODE<TAB>MSG
#   acme.sh list TABLE          stdout: instance<TAB>KEY lines
#   acme.sh set                 stdin: KEY<TAB>VALUE     stdout: fault lines for refused values; "deferred"
#   acme.sh add TABLE           stdout: instance<TAB>KEY
#   acme.sh delete TABLE KEY
#   acme.sh end-session         after a session in which "set" printed "deferred"
# Values are escaped (\\ \n \t); this script stores them escaped, one file per value, and prints
# them back as stored. A real vendor script would talk to its driver or daemon instead.
#
# Keys:  led_brightness (0-100)  fan_mode (Auto|Quiet|Boost, applied at the end of the session)
#        fan_active (the mode in effect), board_temperature (both read only)
#        table "profile", keys profile.N.name (up to 64 characters), profile.N.enable (true|false)
# Environment: ACME_STATE (state directory, default /tmp/acme), ACME_THERMAL (temperature file in
# millidegrees, default /sys/class/thermal/thermal_zone0/temp), ACME_LOG (if set, a file where
# each call is logged).

S=${ACME_STATE:-/tmp/acme}
THERMAL=${ACME_THERMAL:-/sys/class/thermal/thermal_zone0/temp}
TAB=$(printf '\t')
MAX_PROFILES=8

[ -n "$ACME_LOG" ] && echo "$*" >>"$ACME_LOG"

# First run: the factory state.
if [ ! -d "$S" ]; then
	mkdir -p "$S/profile" || exit 1
	echo 50 >"$S/led_brightness"
	echo Auto >"$S/fan_mode"
	echo Auto >"$S/fan_active"
	echo 1 >"$S/profile.next"
fi

fault() { printf 'fault\t%s\t%s\t%s\n' "$1" "$2" "$3"; }

# The file of a key, or nothing when the key is unknown. Instance keys are numbers, so a key
# can never name a file outside the state directory.
file_of() {
	case $1 in
	led_brightness | fan_mode | fan_active) echo "$S/$1" ;;
	profile.*.name | profile.*.enable)
		n=${1#profile.}
		n=${n%%.*}
		case $n in '' | *[!0-9]*) return 1 ;; esac
		[ "$1" = "profile.$n.${1##*.}" ] && [ -d "$S/profile/$n" ] || return 1
		echo "$S/profile/$n/${1##*.}"
		;;
	*) return 1 ;;
	esac
}

# Checks a new value: prints a fault line and fails when it is refused.
check() {
	case $1 in
	led_brightness)
		case $2 in '' | *[!0-9]*) fault "$1" 9007 "not a number: $2"; return 1 ;; esac
		if [ ${#2} -gt 3 ] || [ "$2" -gt 100 ]; then
			fault "$1" 9007 "brightness is 0 to 100"
			return 1
		fi
		;;
	fan_mode)
		case $2 in Auto | Quiet | Boost) ;; *) fault "$1" 9007 "fan mode is Auto, Quiet or Boost"; return 1 ;; esac
		;;
	profile.*.enable)
		case $2 in true | false) ;; *) fault "$1" 9007 "true or false"; return 1 ;; esac
		;;
	profile.*.name)
		if [ ${#2} -gt 64 ]; then fault "$1" 9007 "name longer than 64"; return 1; fi
		;;
	fan_active | board_temperature) fault "$1" 9008 "read only"; return 1 ;;
	esac
	return 0
}

case $1 in
get)
	while IFS= read -r key || [ -n "$key" ]; do
		if [ "$key" = board_temperature ]; then
			if t=$(cat "$THERMAL" 2>/dev/null) && [ -n "$t" ]; then
				printf 'ok\t%s\t%s\n' "$key" "$((t / 1000))"
			fi # no answer: the agent shows the default
		elif f=$(file_of "$key") && [ -f "$f" ]; then
			printf 'ok\t%s\t%s\n' "$key" "$(cat "$f")"
		else
			fault "$key" 9005 "unknown key"
		fi
	done
	;;
list)
	[ "$2" = profile ] || { echo "unknown table $2" >&2; exit 2; }
	for d in "$S"/profile/*; do
		if [ -d "$d" ]; then printf 'instance\t%s\n' "${d##*/}"; fi
	done
	;;
set)
	# All or nothing: check every value first, change nothing if one is refused.
	input=$(cat)
	refused=0
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		key=${line%%"$TAB"*}
		value=${line#*"$TAB"}
		if ! check "$key" "$value"; then
			refused=1
		elif ! file_of "$key" >/dev/null; then
			fault "$key" 9005 "unknown key"
			refused=1
		fi
	done <<EOT
$input
EOT
	[ $refused = 0 ] || exit 0
	deferred=0
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		key=${line%%"$TAB"*}
		value=${line#*"$TAB"}
		f=$(file_of "$key") || exit 1
		printf '%s\n' "$value" >"$f.new" && mv "$f.new" "$f" || exit 1
		[ "$key" = fan_mode ] && deferred=1
	done <<EOT
$input
EOT
	if [ $deferred = 1 ]; then
		: >"$S/pending"
		echo deferred
	fi
	;;
add)
	[ "$2" = profile ] || { echo "unknown table $2" >&2; exit 2; }
	count=0
	for d in "$S"/profile/*; do [ -d "$d" ] && count=$((count + 1)); done
	if [ $count -ge $MAX_PROFILES ]; then
		fault profile 9004 "at most $MAX_PROFILES profiles"
		exit 0
	fi
	n=$(cat "$S/profile.next" 2>/dev/null) || n=1
	mkdir "$S/profile/$n" || exit 1
	echo "Profile $n" >"$S/profile/$n/name"
	echo false >"$S/profile/$n/enable"
	echo $((n + 1)) >"$S/profile.next"
	printf 'instance\t%s\n' "$n"
	;;
delete)
	[ "$2" = profile ] || { echo "unknown table $2" >&2; exit 2; }
	case $3 in '' | *[!0-9]*) fault "$3" 9005 "no such profile"; exit 0 ;; esac
	[ -d "$S/profile/$3" ] || { fault "$3" 9005 "no such profile"; exit 0; }
	rm -r "$S/profile/$3"
	;;
end-session)
	# The deferred work: here, "restart the fan controller" with the new mode.
	if [ -f "$S/pending" ]; then
		cp "$S/fan_mode" "$S/fan_active" && rm "$S/pending"
	fi
	;;
*)
	echo "usage: $0 get|list TABLE|set|add TABLE|delete TABLE KEY|end-session" >&2
	exit 2
	;;
esac
