#!/usr/bin/env bash
# Regenerate the synthetic speech test set in tests/data/speech/.
#
# Why synthetic: the VAD tests need short, licence-free, home-assistant-style
# commands with a known transcript. espeak-ng gives several voices and rates;
# sox trims espeak's own leading/trailing silence so the tests control every
# millisecond of silence themselves (tests/kit/speech_data.py adds it back).
#
# Output: 16 kHz mono signed 16-bit WAVs plus manifest.json (file -> text).
# Requires: espeak-ng, sox.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${repo_root}/tests/data/speech"
tmp_dir="$(mktemp -d)"
trap 'rm -rf "${tmp_dir}"' EXIT

mkdir -p "${out_dir}"
rm -f "${out_dir}"/*.wav "${out_dir}/manifest.json"

# name|voice|words per minute|text
commands=(
  "turn_on_kitchen_lights|en-us|175|turn on the kitchen lights"
  "timer_ten_minutes|en-gb|175|set a timer for ten minutes"
  "weather_tomorrow|en-us+f3|175|what is the weather like tomorrow"
  "bedroom_fan_off|en-us+m3|175|turn off the bedroom fan"
  "thermostat_twenty_one|en-us|130|set the thermostat to twenty one degrees"
  "jazz_living_room|en-gb|175|play some jazz in the living room"
  "lock_front_door|en-us+f3|175|lock the front door"
  "what_time|en-us+m3|175|what time is it"
  "milk_shopping_list|en-us|130|add milk to the shopping list"
  "open_garage|en-us|175|open the garage door"
  "dim_lights_fifty|en-gb|130|dim the lights to fifty percent"
  "back_door_locked|en-us+f3|130|is the back door locked"
)

manifest="{"
separator=""
for entry in "${commands[@]}"; do
  IFS='|' read -r name voice rate text <<<"${entry}"
  raw="${tmp_dir}/${name}.wav"
  espeak-ng -v "${voice}" -s "${rate}" -w "${raw}" "${text}"
  # Trim silence at both ends (reverse trick), then resample with sox's
  # very-high-quality filter. -D: no dither, so the output is reproducible.
  sox -D "${raw}" -r 16000 -c 1 -b 16 -e signed-integer "${out_dir}/${name}.wav" \
    silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse rate -v 16000
  manifest+="${separator}\n  \"${name}.wav\": \"${text}\""
  separator=","
done
manifest+="\n}\n"
printf "%b" "${manifest}" >"${out_dir}/manifest.json"

echo "wrote ${#commands[@]} files to ${out_dir}"
du -ch "${out_dir}"/*.wav | tail -1
