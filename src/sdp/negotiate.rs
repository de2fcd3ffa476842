//! Building offers and answers, and reading answers to our offers.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::crypto::write_crypto;
use super::parse::{MediaDescription, SessionDescription};
use super::{Codec, Direction, LocalSession, Negotiated, SdpError, SrtpAnswer, ip_kind};
use crate::config::{CodecName, SrtpPolicy};
use crate::srtp::{MasterKey, SrtpKeys, Suite};

/// Payload types we use in our own offers.
const OFFER_OPUS_PT: u8 = 111;
const OFFER_TELEPHONE_EVENT_PT: u8 = 101;
/// What we ask to receive and send when the peer says nothing.
const DEFAULT_PTIME_MS: u32 = 20;
/// Packet durations the media layer can send.
const SUPPORTED_PTIMES_MS: [u32; 6] = [10, 20, 30, 40, 50, 60];

/// Answer an offer: pick our most preferred codec that the offer has, echo the offerer's
/// telephone-event number, mirror the direction, refuse every other stream with port 0.
/// Fails with [`SdpError::NoCommonCodec`] (answer 488) when nothing matches.
///
/// SRTP (`srtp`): an `RTP/SAVP` stream is taken only when the policy allows SRTP and the
/// offer came over TLS; its first `a=crypto` line with a suite we have is answered with
/// the same tag and suite and our own key (the call's current key when it has one of that
/// suite, so a refresh does not rekey; else `srtp.fresh_key`). With SRTP allowed, an
/// `RTP/SAVP` stream is preferred to an `RTP/AVP` one. [`SdpError::Srtp`] (488) when the
/// policy's demand cannot be met.
pub fn answer(
    offer: &SessionDescription,
    prefs: &[CodecName],
    local_rtp: SocketAddr,
    session: &mut LocalSession,
    srtp: &SrtpAnswer<'_>,
) -> Result<(String, Negotiated), SdpError> {
    let secure_allowed = srtp.policy != SrtpPolicy::Off && srtp.secure_signalling;
    let plain_allowed = srtp.policy != SrtpPolicy::Required;
    let mut chosen: Option<(usize, Negotiated)> = None;
    let mut saw_audio = false;
    let mut saw_refused_profile = false;
    'passes: for secure in [true, false] {
        for (index, media) in offer.media.iter().enumerate() {
            if !is_audio(media) || media.port == 0 {
                continue;
            }
            let (wanted, allowed) = if secure {
                (media.is_srtp(), secure_allowed)
            } else {
                (media.is_plain_rtp(), plain_allowed)
            };
            if !wanted {
                continue;
            }
            if !allowed {
                saw_refused_profile = true;
                continue;
            }
            let keys = if secure {
                let Some(line) = media.crypto.first() else {
                    saw_refused_profile = true;
                    continue;
                };
                Some(our_keys(srtp, line.tag, line.suite, &line.key))
            } else {
                None
            };
            saw_audio = true;
            let Some(codec) = pick_codec(media, prefs) else {
                continue;
            };
            let negotiated = Negotiated {
                codec,
                telephone_event: find_telephone_event(media, codec.clock_rate),
                remote_rtp: remote_address(offer, media),
                direction: offer.direction_for(media).reversed(),
                ptime_ms: pick_ptime(media),
                srtp: keys,
            };
            chosen = Some((index, negotiated));
            break 'passes;
        }
    }
    let Some((chosen_index, negotiated)) = chosen else {
        return Err(if saw_audio {
            SdpError::NoCommonCodec
        } else if saw_refused_profile {
            SdpError::Srtp(if plain_allowed {
                "RTP/SAVP needs SIP over TLS, SRTP on, and an a=crypto line we support"
            } else {
                "SRTP is required (RTP/SAVP with a=crypto over SIP on TLS)"
            })
        } else if offer.media.iter().any(is_audio) {
            SdpError::NoCommonCodec
        } else {
            SdpError::NoAudio
        });
    };

    let mut body = session_lines(local_rtp);
    for (index, media) in offer.media.iter().enumerate() {
        if index == chosen_index {
            let te = negotiated.telephone_event.map(|pt| (pt, te_clock(media, pt)));
            write_audio(
                &mut body,
                local_rtp.port(),
                &media.proto,
                &[negotiated.codec],
                te,
                negotiated.direction,
                negotiated.srtp.as_ref(),
            );
        } else {
            write_refused(&mut body, media);
        }
    }
    Ok((session.render(local_rtp, &body), negotiated))
}

/// Our key for `suite` (kept from the call's current keys when the suite is the same) and
/// the offerer's, under the offerer's tag.
fn our_keys(srtp: &SrtpAnswer<'_>, tag: u32, suite: Suite, theirs: &MasterKey) -> SrtpKeys {
    let send = match srtp.current {
        Some(current) if current.suite == suite => current.send.clone(),
        _ => srtp.fresh_key.clone(),
    };
    SrtpKeys { tag, suite, send, receive: theirs.clone() }
}

/// Our offer: every preferred codec, telephone-event, and the given direction. With
/// `srtp` (a call on SRTP offering again) the stream is `RTP/SAVP` with one `a=crypto`
/// line: the call's tag, suite and our key, so that nothing is rekeyed.
pub fn offer(
    prefs: &[CodecName],
    local_rtp: SocketAddr,
    session: &mut LocalSession,
    direction: Direction,
    telephone_event: bool,
    srtp: Option<&SrtpKeys>,
) -> String {
    let mut codecs = Vec::new();
    for name in prefs {
        let codec = static_codec(*name, OFFER_OPUS_PT);
        if !codecs.iter().any(|c: &Codec| c.name == codec.name) {
            codecs.push(codec);
        }
    }
    let mut body = session_lines(local_rtp);
    write_audio(
        &mut body,
        local_rtp.port(),
        if srtp.is_some() { "RTP/SAVP" } else { "RTP/AVP" },
        &codecs,
        telephone_event.then_some((OFFER_TELEPHONE_EVENT_PT, 8000)),
        direction,
        srtp,
    );
    session.render(local_rtp, &body)
}

/// Read the answer to our offer (made with `prefs`, and `offered` keys when it was
/// `RTP/SAVP`): the codec is the first one in the answer that we offered. An answer cannot
/// change the profile (RFC 3264 §6), and one to an SRTP offer must accept our `a=crypto`
/// line: same tag, same suite (RFC 4568 §7.1.2); its key is what we receive with.
pub fn accept_answer(
    prefs: &[CodecName],
    answer: &SessionDescription,
    offered: Option<&SrtpKeys>,
) -> Result<Negotiated, SdpError> {
    let media =
        answer.media.iter().find(|m| is_audio(m) && m.port != 0).ok_or(SdpError::NoAudio)?;
    let srtp = match offered {
        None if media.is_plain_rtp() => None,
        Some(ours) if media.is_srtp() => {
            let line = media
                .crypto
                .iter()
                .find(|l| l.tag == ours.tag && l.suite == ours.suite)
                .ok_or(SdpError::Srtp("answer does not accept our a=crypto line"))?;
            Some(SrtpKeys { receive: line.key.clone(), ..ours.clone() })
        }
        _ => return Err(SdpError::Srtp("answer changes the RTP profile of our offer")),
    };
    let codec = media
        .payload_types()
        .find_map(|pt| {
            let codec = codec_for(media, pt)?;
            prefs.contains(&codec.name).then_some(codec)
        })
        .ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        codec,
        telephone_event: find_telephone_event(media, codec.clock_rate),
        remote_rtp: remote_address(answer, media),
        direction: answer.direction_for(media).reversed(),
        ptime_ms: pick_ptime(media),
        srtp,
    })
}

fn is_audio(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("audio")
}

/// Our preference order decides (RFC 3264 lets the answerer choose among the offered).
fn pick_codec(media: &MediaDescription, prefs: &[CodecName]) -> Option<Codec> {
    prefs.iter().find_map(|want| {
        media.payload_types().filter_map(|pt| codec_for(media, pt)).find(|c| c.name == *want)
    })
}

/// What a payload type means in this media section, if it is a codec we have.
fn codec_for(media: &MediaDescription, pt: u8) -> Option<Codec> {
    match media.rtpmap(pt) {
        Some(map) => {
            let enc = map.encoding.as_str();
            if enc.eq_ignore_ascii_case("PCMU") && map.clock_rate == 8000 {
                Some(static_codec(CodecName::Pcmu, pt))
            } else if enc.eq_ignore_ascii_case("PCMA") && map.clock_rate == 8000 {
                Some(static_codec(CodecName::Pcma, pt))
            } else if enc.eq_ignore_ascii_case("opus")
                && map.clock_rate == 48000
                && map.channels.unwrap_or(2) == 2
            {
                Some(static_codec(CodecName::Opus, pt))
            } else {
                None
            }
        }
        // Static payload types need no rtpmap (RFC 3551).
        None => match pt {
            0 => Some(static_codec(CodecName::Pcmu, 0)),
            8 => Some(static_codec(CodecName::Pcma, 8)),
            _ => None,
        },
    }
}

fn static_codec(name: CodecName, dynamic_pt: u8) -> Codec {
    match name {
        CodecName::Pcmu => Codec {
            name,
            payload_type: if dynamic_pt >= 96 { 0 } else { dynamic_pt },
            clock_rate: 8000,
            channels: 1,
        },
        CodecName::Pcma => Codec {
            name,
            payload_type: if dynamic_pt >= 96 { 8 } else { dynamic_pt },
            clock_rate: 8000,
            channels: 1,
        },
        CodecName::Opus => Codec { name, payload_type: dynamic_pt, clock_rate: 48000, channels: 2 },
    }
}

/// telephone-event at the codec's clock rate if offered, else at 8000.
fn find_telephone_event(media: &MediaDescription, clock_rate: u32) -> Option<u8> {
    let offered: Vec<_> = media
        .payload_types()
        .filter_map(|pt| media.rtpmap(pt))
        .filter(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
        .collect();
    offered
        .iter()
        .find(|m| m.clock_rate == clock_rate)
        .or_else(|| offered.iter().find(|m| m.clock_rate == 8000))
        .map(|m| m.payload_type)
}

fn te_clock(media: &MediaDescription, pt: u8) -> u32 {
    media.rtpmap(pt).map_or(8000, |m| m.clock_rate)
}

fn remote_address(sdp: &SessionDescription, media: &MediaDescription) -> Option<SocketAddr> {
    let conn = sdp.connection_for(media)?;
    let ip: IpAddr = conn.address?;
    if ip.is_unspecified() || media.port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, media.port))
}

/// The peer's ptime if we can send it (and it respects maxptime), else 20 ms.
fn pick_ptime(media: &MediaDescription) -> u32 {
    let max = media.maxptime.unwrap_or(u32::MAX);
    match media.ptime {
        Some(p) if SUPPORTED_PTIMES_MS.contains(&p) && p <= max => p,
        _ if DEFAULT_PTIME_MS <= max => DEFAULT_PTIME_MS,
        _ => SUPPORTED_PTIMES_MS
            .iter()
            .copied()
            .filter(|p| *p <= max)
            .max()
            .unwrap_or(DEFAULT_PTIME_MS),
    }
}

fn session_lines(local: SocketAddr) -> String {
    format!("s=zendesk-ivr\r\nc=IN {} {}\r\nt=0 0\r\n", ip_kind(local), local.ip())
}

fn write_audio(
    out: &mut String,
    port: u16,
    proto: &str,
    codecs: &[Codec],
    telephone_event: Option<(u8, u32)>,
    direction: Direction,
    srtp: Option<&SrtpKeys>,
) {
    let _ = write!(out, "m=audio {port} {proto}");
    for c in codecs {
        let _ = write!(out, " {}", c.payload_type);
    }
    if let Some((pt, _)) = telephone_event {
        let _ = write!(out, " {pt}");
    }
    out.push_str("\r\n");
    for c in codecs {
        let _ = match c.name {
            CodecName::Pcmu => write!(out, "a=rtpmap:{} PCMU/8000\r\n", c.payload_type),
            CodecName::Pcma => write!(out, "a=rtpmap:{} PCMA/8000\r\n", c.payload_type),
            CodecName::Opus => write!(
                out,
                "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n",
                pt = c.payload_type
            ),
        };
    }
    if let Some((pt, clock)) = telephone_event {
        let _ = write!(out, "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n");
    }
    let _ = write!(
        out,
        "a=ptime:{DEFAULT_PTIME_MS}\r\na=maxptime:{}\r\na={}\r\n",
        SUPPORTED_PTIMES_MS[SUPPORTED_PTIMES_MS.len() - 1],
        direction.as_attribute()
    );
    if let Some(keys) = srtp {
        write_crypto(out, keys.tag, keys.suite, &keys.send);
    }
}

/// A refused stream echoes media type, proto and formats with port 0 (RFC 3264 §6).
fn write_refused(out: &mut String, media: &MediaDescription) {
    let _ = write!(out, "m={} 0 {}", media.media, media.proto);
    if media.formats.is_empty() {
        out.push_str(" 0");
    }
    for f in &media.formats {
        let _ = write!(out, " {f}");
    }
    out.push_str("\r\n");
}
