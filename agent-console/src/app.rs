//! The eframe application: applies backend events to the state, uploads new screen pixels to
//! textures, draws the panels and hands queued commands to the backend.

use std::sync::Arc;

use crate::backend::{self, Backend, Startup};
use crate::state::{ConsoleState, Screen, Settings};
use crate::ui::{self, RemoteScreen};

/// The console application.
pub struct ConsoleApp {
    state: ConsoleState,
    backend: Backend,
    runtime: ui::Runtime,
    /// Where the settings are kept, and what was last written there.
    settings_file: Option<(std::path::PathBuf, Settings)>,
}

impl std::fmt::Debug for ConsoleApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ConsoleApp {
    /// Starts the backend and shows `state` first.
    pub fn new(
        ctx: &egui::Context,
        state: ConsoleState,
        startup: Startup,
        options: backend::BackendOptions,
    ) -> std::io::Result<Self> {
        let repaint_ctx = ctx.clone();
        // News from the backend is drawn by one frame: egui repaints twice for an immediate
        // request (`request_repaint`), and that second frame of the whole window would double
        // the drawing work of every remote screen update. A request with a delay, however
        // short, repaints once.
        let backend = Backend::start(
            startup,
            options,
            Arc::new(move || {
                repaint_ctx.request_repaint_after(std::time::Duration::from_micros(1))
            }),
        )?;
        Ok(Self {
            state,
            backend,
            runtime: ui::Runtime::default(),
            settings_file: None,
        })
    }

    /// Writes the settings to `path` whenever the agent changes them.
    pub fn keep_settings_in(mut self, path: std::path::PathBuf) -> Self {
        self.settings_file = Some((path, self.state.settings.clone()));
        self
    }

    /// Writes changed settings; a failure is shown in the status line.
    fn save_settings(&mut self) {
        let Some((path, saved)) = &mut self.settings_file else {
            return;
        };
        if *saved == self.state.settings {
            return;
        }
        *saved = self.state.settings.clone();
        if let Err(e) = saved.save(path)
            && let Some(d) = self.state.desk_mut()
        {
            d.notice = Some(tether_i18n::t!(
                "settings-cannot-save",
                path = path.display().to_string(),
                why = e.to_string()
            ));
        }
    }

    /// The state (for tests).
    pub fn state(&self) -> &ConsoleState {
        &self.state
    }

    fn sync_textures(&mut self, ctx: &egui::Context) {
        // One remote pixel per screen pixel (1:1, or larger) stays crisp and is cheapest to draw;
        // a screen fitted into a smaller window is smoothed.
        let opts = egui::TextureOptions {
            magnification: egui::TextureFilter::Nearest,
            ..egui::TextureOptions::LINEAR
        };
        let max_side = ctx.input(|i| i.max_texture_side);
        let mut map = backend::lock(self.backend.views());
        self.runtime.textures.retain(|id, _| map.contains_key(id));
        for (id, vb) in map.iter_mut() {
            if vb.width == 0 || vb.height == 0 {
                continue;
            }
            // A picture the graphics cannot hold fails this view, not the console.
            if vb.width as usize > max_side || vb.height as usize > max_side {
                if let Some(tab) = self.state.desk_mut().and_then(|desk| desk.tab_mut(*id)) {
                    tab.screen = Screen::Failed(tether_i18n::t!(
                        "screen-too-large",
                        width = vb.width,
                        height = vb.height,
                        max = max_side
                    ));
                }
                self.runtime.textures.remove(id);
                continue;
            }
            let (w, h) = (vb.width as usize, vb.height as usize);
            let draw_ms = self.runtime.draw_ms;
            let tex = self.runtime.textures.get_mut(id).map(|r| {
                r.stats = vb.stats.clone();
                r.stats.draw_ms = draw_ms;
                &mut r.texture
            });
            let stale = tex.as_ref().is_none_or(|t| t.size() != [w, h]);
            if vb.resized || stale {
                let img = egui::ColorImage::from_rgba_unmultiplied([w, h], &vb.rgba);
                match tex {
                    Some(t) => t.set(img, opts),
                    None => {
                        let texture = ctx.load_texture(format!("screen-{id}"), img, opts);
                        self.runtime.textures.insert(
                            *id,
                            RemoteScreen {
                                texture,
                                stats: vb.stats.clone(),
                            },
                        );
                    }
                }
                vb.resized = false;
                vb.dirty = None;
            } else if let (Some(d), Some(t)) = (vb.dirty.take(), tex) {
                // Only the changed rectangle goes to the graphics, in one pass (the pixels are
                // opaque: no alpha to multiply).
                let mut sub = Vec::with_capacity(d.area() as usize);
                for y in d.y..d.y + d.h {
                    let off = (y as usize * w + d.x as usize) * 4;
                    sub.extend(
                        vb.rgba[off..off + d.w as usize * 4]
                            .chunks_exact(4)
                            .map(|p| egui::Color32::from_rgb(p[0], p[1], p[2])),
                    );
                }
                let img = egui::ColorImage::new([d.w as usize, d.h as usize], sub);
                t.set_partial([d.x as usize, d.y as usize], img, opts);
            }
            // The picture is on screen from this frame on: that closes the frame's timeline
            // (capture, encode, send on the host; receive, decode, present here).
            if let Some(captured) = vb.unpresented_capture_us.take() {
                vb.stats.present_ms = crate::net::now_us().saturating_sub(captured) as f32 / 1000.0;
                if let Some(r) = self.runtime.textures.get_mut(id) {
                    r.stats.present_ms = vb.stats.present_ms;
                }
            }
            if let Some(tab) = self.state.desk_mut().and_then(|desk| desk.tab_mut(*id)) {
                tab.screen = Screen::Live {
                    width: vb.width,
                    height: vb.height,
                };
            }
        }
    }
}

impl ConsoleApp {
    /// Copies transfer progress into the session tabs.
    fn sync_transfers(&mut self) {
        let list = backend::lock_transfers(self.backend.transfers());
        let Some(desk) = self.state.desk_mut() else {
            return;
        };
        for tab in &mut desk.sessions {
            tab.transfers = list
                .iter()
                .filter(|t| t.session == tab.info.id)
                .map(|t| {
                    let done = t.progress.done.load(std::sync::atomic::Ordering::Relaxed);
                    let secs = t.started.elapsed().as_secs_f64().max(0.001);
                    crate::state::TransferInfo {
                        id: t.id,
                        name: t.name.clone(),
                        upload: t.upload,
                        done,
                        total: t.progress.total.load(std::sync::atomic::Ordering::Relaxed),
                        rate: done as f64 / secs,
                        state: t.status.clone(),
                    }
                })
                .collect();
        }
    }
}

impl ConsoleApp {
    /// One frame: applies the backend's news, uploads pixels, draws and sends commands. This is
    /// all of the eframe application, so a test harness can drive the real console with it.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        for ev in self.backend.events() {
            self.state.apply(ev);
        }
        let ctx = ui.ctx().clone();
        self.sync_textures(&ctx);
        self.sync_transfers();
        ui::show(ui, &mut self.state, &mut self.runtime);
        for cmd in self.state.take_commands() {
            self.backend.send(cmd);
        }
        self.save_settings();
        // Key expiry, waits and tab markers count on.
        ctx.request_repaint_after(std::time::Duration::from_secs(1));
    }

    /// The state, for tests that drive the app.
    pub fn state_mut(&mut self) -> &mut ConsoleState {
        &mut self.state
    }
}

impl eframe::App for ConsoleApp {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        ui::background(visuals).to_normalized_gamma_f32()
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(s) = frame.info().cpu_usage {
            self.runtime.draw_ms = s * 1000.0;
            tracing::trace!(draw_ms = self.runtime.draw_ms, "frame drawn");
        }
        self.frame(ui);
    }
}
