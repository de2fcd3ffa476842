//! The in-band DTMF detector against audio that must NOT produce digits: the shipped hold
//! music, espeak-ng speech in English and Norwegian (with digits spoken), and the encoded
//! prompt frames, each straight and through G.711. Plus positive controls: real tones laid
//! over the same audio are still found.

use std::path::PathBuf;
use std::process::Command;

use zendesk_ivr::config::CodecName;
use zendesk_ivr::media::codec::Decoder;
use zendesk_ivr::media::dtmf::inband::{InbandDetector, synthesize};
use zendesk_ivr::media::prompt::{Limits, Pcm, decode_wav, encode, read_wav_file, resample};

const SENTENCES_EN: &str = "Welcome to customer support. Press one for billing, two for \
    technical support, or three to hear your ticket status again. Your ticket number is \
    four five six seven eight nine. All of our agents are busy; please hold, and we will be \
    with you shortly. Seven, eight, nine, zero, star, pound.";
const SENTENCES_NB: &str = "Velkommen til kundeservice. Trykk en for faktura, to for teknisk \
    støtte, eller tre for å høre status på saken din. Saksnummeret ditt er fire fem seks sju \
    åtte ni. Alle våre medarbeidere er opptatt, vennligst vent.";

fn espeak(voice: &str, text: &str, speed: &str, pitch: &str) -> Pcm {
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", speed, "-p", pitch, "--stdout", text])
        .output()
        .expect("espeak-ng is installed");
    assert!(out.status.success(), "espeak-ng {voice}: {:?}", out.status);
    decode_wav(&out.stdout, Limits::default()).expect("espeak-ng WAV")
}

fn hold_music() -> Pcm {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audio/defaultmusic_on_hold.wav");
    read_wav_file(&path, Limits::default()).expect("hold music")
}

/// 8 kHz 16-bit PCM, straight from the resampler.
fn at_8k(pcm: &Pcm) -> Vec<i16> {
    let samples = resample(pcm, 8000).unwrap();
    Pcm { rate: 8000, samples }.to_i16()
}

/// What the far end hears: the prompt frames as encoded for `codec`, decoded.
fn through_codec(pcm: &Pcm, codec: CodecName) -> Vec<i16> {
    let frames = encode(pcm, codec).unwrap();
    let mut dec = Decoder::new(codec).unwrap();
    let mut out = Vec::new();
    for f in frames.iter() {
        dec.decode_into(&f.payload, &mut out).unwrap();
    }
    out
}

fn digits(pcm: &[i16]) -> String {
    let mut det = InbandDetector::new();
    let mut out = Vec::new();
    for chunk in pcm.chunks(160) {
        det.process(chunk, &mut out);
    }
    out.iter().map(|e| e.digit).collect()
}

/// Every variant of a signal a call could carry: straight, µ-law and A-law, and at a hotter
/// level (+6 dB, clipped), since a quiet signal is an easy pass.
fn variants(name: &str, pcm: &Pcm) -> Vec<(String, Vec<i16>)> {
    let loud = Pcm {
        rate: pcm.rate,
        samples: pcm.samples.iter().map(|s| (s * 2.0).clamp(-1.0, 1.0)).collect(),
    };
    vec![
        (format!("{name} linear"), at_8k(pcm)),
        (format!("{name} PCMU"), through_codec(pcm, CodecName::Pcmu)),
        (format!("{name} PCMA"), through_codec(pcm, CodecName::Pcma)),
        (format!("{name} +6 dB PCMU"), through_codec(&loud, CodecName::Pcmu)),
    ]
}

#[test]
fn hold_music_yields_no_digits() {
    let music = hold_music();
    for (name, pcm) in variants("hold music", &music) {
        // Three loops, as a caller on hold would hear it.
        let looped: Vec<i16> = pcm.iter().copied().cycle().take(pcm.len() * 3).collect();
        assert_eq!(digits(&looped), "", "{name}");
    }
}

#[test]
fn speech_yields_no_digits() {
    let voices = [
        ("en-us", SENTENCES_EN, "175", "50"),
        ("en-us", SENTENCES_EN, "130", "80"),
        ("en-us+f3", SENTENCES_EN, "160", "60"),
        ("nb", SENTENCES_NB, "175", "50"),
        ("nb", SENTENCES_NB, "140", "30"),
    ];
    for (voice, text, speed, pitch) in voices {
        let speech = espeak(voice, text, speed, pitch);
        assert!(speech.duration().as_secs() >= 5, "{voice}: {:?}", speech.duration());
        for (name, pcm) in variants(&format!("{voice} s{speed} p{pitch}"), &speech) {
            assert_eq!(digits(&pcm), "", "{name}");
        }
    }
}

/// Positive control: the same audio does not blind the detector to a real key press.
#[test]
fn tones_over_music_and_speech_are_still_found() {
    let music = at_8k(&hold_music());
    let speech = at_8k(&espeak("en-us", SENTENCES_EN, "175", "50"));
    for (name, background) in [("music", music), ("speech", speech)] {
        let mut mixed = background[..8000 * 5].to_vec();
        for (i, d) in "159#".chars().enumerate() {
            let tone = synthesize(d, -6.0, 2.0, 800).unwrap();
            let at = 8000 + i * 8000;
            for (k, s) in tone.iter().enumerate() {
                // Speech at full level is a harsh test; duck it as a phone's echo canceller would.
                let bg = i32::from(mixed[at + k]) / if name == "speech" { 4 } else { 1 };
                mixed[at + k] = (bg + i32::from(*s)).clamp(-32768, 32767) as i16;
            }
        }
        assert_eq!(digits(&mixed), "159#", "{name}");
    }
}
