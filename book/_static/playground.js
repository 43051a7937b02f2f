// LabCLIP Book: the playground, in the reader's browser, with no server and no library.
//
// The miniature's text tower (a 4-layer causal transformer, mean-pooled) runs here on the weights the playground
// chapter exported (playground-data.js, next to this file): a typed caption is tokenised with the miniature's
// word ids, encoded, passed through the head into CLIP's text embedding, and scored by cosine against the scene's
// image embedding, once as it is (CLIP) and once through the matrix A (LABCLIP). Numbers are computed in float64
// from the float32 weights, so they match the chapter's Python to about 1e-6.
(function () {
  "use strict";

  // ---------------------------------------------------------------- the model (no DOM: node can run it too)
  function decodeWeights(base64) {
    const bytes = typeof atob === "function"
      ? Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
      : new Uint8Array(Buffer.from(base64, "base64"));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  function Model(data) {
    const all = decodeWeights(data.weights);
    const t = {};
    for (const [name, spec] of Object.entries(data.tensors)) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      t[name] = { v: all.subarray(spec.offset, spec.offset + size), shape: spec.shape };
    }
    this.t = t;
    this.data = data;
    this.width = t["tower.token_embedding.weight"].shape[1];
    this.dim = t["text_proj"].shape[0];
  }

  // y = W x + b for W stored row-major (out × in), as torch's Linear
  function linear(W, x, b, rowOffset, rows) {
    const n = x.length, out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = b ? b[rowOffset + r] : 0;
      const base = (rowOffset + r) * n;
      for (let i = 0; i < n; i++) s += W[base + i] * x[i];
      out[r] = s;
    }
    return out;
  }

  function layerNorm(x, w, b, eps) {
    let mean = 0, v = 0;
    for (const a of x) mean += a;
    mean /= x.length;
    for (const a of x) v += (a - mean) * (a - mean);
    const inv = 1 / Math.sqrt(v / x.length + eps);
    return x.map((a, i) => (a - mean) * inv * w[i] + b[i]);
  }

  // erf to ~1e-16 relative (W. J. Cody's rational approximations are overkill here; a series and a continued
  // fraction switch at |x| = 2.5, both converged well below the 1e-6 the scores need)
  function erf(x) {
    const ax = Math.abs(x);
    if (ax < 2.5) {
      let term = x, sum = x;
      for (let n = 1; n < 80; n++) {
        term *= -x * x / n;
        const add = term / (2 * n + 1);
        sum += add;
        if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      }
      return 2 / Math.sqrt(Math.PI) * sum;
    }
    // erfc by Lentz's continued fraction
    let f = ax, C = ax, D = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      D = ax + an * D; D = 1 / D;
      C = ax + an / C;
      const delta = C * D;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
    return x > 0 ? 1 - erfc : erfc - 1;
  }
  const gelu = (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));

  function normalize(x) {
    let s = 0;
    for (const a of x) s += a * a;
    const n = Math.sqrt(s) || 1;
    return x.map((a) => a / n);
  }

  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);

  // The caption's token ids, as the miniature's tokenizer gives them; an Error names the unknown words.
  Model.prototype.tokenize = function (caption) {
    const words = caption.toLowerCase().trim().split(/\s+/).filter((w) => w.length);
    if (!words.length) throw new Error("type a caption");
    const unknown = words.filter((w) => !Object.prototype.hasOwnProperty.call(this.data.words, w));
    if (unknown.length) {
      throw new Error(`the miniature CLIP only knows the words ${Object.keys(this.data.words).join(", ")}; ` +
                      `not: ${unknown.join(", ")}`);
    }
    const ids = [this.data.start];
    for (const w of words) ids.push(...this.data.words[w]);
    ids.push(this.data.end);
    if (ids.length >= this.data.context_length) {
      throw new Error(`caption too long for the miniature (${this.data.context_length} tokens)`);
    }
    return ids;
  };

  // CLIP's text embedding of one caption (unit length)
  Model.prototype.encodeText = function (caption) {
    const t = this.t, W = this.width, H = this.data.heads, hd = W / H, eps = this.data.layer_norm_eps;
    const ids = this.tokenize(caption), L = ids.length;
    let x = ids.map((id, p) => {
      const row = new Float64Array(W);
      for (let i = 0; i < W; i++) {
        row[i] = t["tower.token_embedding.weight"].v[id * W + i] + t["tower.positional_embedding"].v[p * W + i];
      }
      return row;
    });
    for (let l = 0; l < this.data.layers; l++) {
      const p = (name) => t[`tower.transformer.resblocks.${l}.${name}`].v;
      const h = x.map((r) => layerNorm(r, p("ln_1.weight"), p("ln_1.bias"), eps));
      const q = h.map((r) => linear(p("attn.in_proj_weight"), r, p("attn.in_proj_bias"), 0, W));
      const k = h.map((r) => linear(p("attn.in_proj_weight"), r, p("attn.in_proj_bias"), W, W));
      const v = h.map((r) => linear(p("attn.in_proj_weight"), r, p("attn.in_proj_bias"), 2 * W, W));
      const attended = [];
      for (let i = 0; i < L; i++) {
        const o = new Float64Array(W);
        for (let head = 0; head < H; head++) {
          const off = head * hd, logits = [];
          for (let j = 0; j <= i; j++) {  // causal: a token sees itself and the tokens before it
            let s = 0;
            for (let d = 0; d < hd; d++) s += q[i][off + d] * k[j][off + d];
            logits.push(s / Math.sqrt(hd));
          }
          const m = Math.max(...logits), e = logits.map((z) => Math.exp(z - m)), Z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j <= i; j++) for (let d = 0; d < hd; d++) o[off + d] += e[j] / Z * v[j][off + d];
        }
        attended.push(linear(p("attn.out_proj.weight"), o, p("attn.out_proj.bias"), 0, W));
      }
      x = x.map((r, i) => r.map((a, d) => a + attended[i][d]));
      x = x.map((r) => {
        const hidden = linear(p("mlp.c_fc.weight"), layerNorm(r, p("ln_2.weight"), p("ln_2.bias"), eps),
                              p("mlp.c_fc.bias"), 0, t[`tower.transformer.resblocks.${l}.mlp.c_fc.weight`].shape[0])
          .map(gelu);
        const out = linear(p("mlp.c_proj.weight"), hidden, p("mlp.c_proj.bias"), 0, W);
        return r.map((a, d) => a + out[d]);
      });
    }
    // final layer norm, mean over every token up to and including end-of-text, the tower's projection (x @ P)
    const pooled = new Float64Array(W);
    for (const r of x) {
      const n = layerNorm(r, t["tower.ln_final.weight"].v, t["tower.ln_final.bias"].v, eps);
      for (let i = 0; i < W; i++) pooled[i] += n[i] / L;
    }
    const P = t["tower.text_projection"], out = P.shape[1], tower = new Float64Array(out);
    for (let c = 0; c < out; c++) {
      let s = 0;
      for (let i = 0; i < W; i++) s += pooled[i] * P.v[i * out + c];
      tower[c] = s;
    }
    // the head: the tower's output standardised, then CLIP's linear map into the shared space
    const scaled = tower.map((a, i) => (a - t["text_mean"].v[i]) / t["text_std"].v[i]);
    return normalize(linear(t["text_proj"].v, scaled, null, 0, this.dim));
  };

  // LABCLIP's text embedding: normalize(A · CLIP's)
  Model.prototype.mapText = function (embedding) {
    return normalize(linear(this.t["A"].v, embedding, null, 0, this.dim));
  };

  Model.prototype.imageEmbedding = function (scene) {
    const v = this.t["images"].v, D = this.dim;
    return Array.from(v.subarray(scene * D, (scene + 1) * D));
  };

  // Both models' cosines of a scene with two captions, as the chapter's Playground.scores
  Model.prototype.scores = function (scene, captionA, captionB) {
    const image = this.imageEmbedding(scene);
    const a = this.encodeText(captionA), b = this.encodeText(captionB);
    const rows = {};
    for (const [model, ta, tb] of [["CLIP", a, b], ["LABCLIP", this.mapText(a), this.mapText(b)]]) {
      const sa = dot(image, ta), sb = dot(image, tb);
      rows[model] = { A: sa, B: sb, prefers: sa > sb ? "A" : sb > sa ? "B" : "tie", margin: sa - sb };
    }
    return rows;
  };

  // "a red cube and a blue sphere" -> "a blue cube and a red sphere" (the first two objects' colours exchanged)
  Model.prototype.swapPartner = function (caption) {
    const colours = new Set(this.data.colours);
    const words = caption.toLowerCase().trim().split(/\s+/);
    const at = words.map((w, i) => (colours.has(w) ? i : -1)).filter((i) => i >= 0);
    if (at.length < 2) throw new Error("the swap needs a caption with two coloured objects");
    if (words[at[0]] === words[at[1]]) throw new Error("both objects have the same colour: swapping changes nothing");
    [words[at[0]], words[at[1]]] = [words[at[1]], words[at[0]]];
    // keep "a"/"an" right for the new colour
    for (const i of at.slice(0, 2)) {
      if (i > 0 && (words[i - 1] === "a" || words[i - 1] === "an")) words[i - 1] = /^[aeiou]/.test(words[i]) ? "an" : "a";
    }
    return words.join(" ");
  };

  // ---------------------------------------------------------------- the page
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function mount(root, data) {
    const model = new Model(data);
    root.textContent = "";
    const picture = el("img", { class: "lp-picture", alt: "the scene", id: "lp-picture" });
    const label = el("div", { class: "lp-scene-label", id: "lp-scene-label" });
    const gallery = el("div", { class: "lp-gallery", role: "listbox", "aria-label": "scenes" });
    const boxA = el("input", { id: "lp-caption-a", type: "text", spellcheck: "false", autocomplete: "off" });
    const boxB = el("input", { id: "lp-caption-b", type: "text", spellcheck: "false", autocomplete: "off" });
    const reset = el("button", { id: "lp-reset", type: "button", text: "Reset to this scene's caption and its swap" });
    const swap = el("button", { id: "lp-swap", type: "button", text: "Make B the swap of A" });
    const error = el("p", { id: "lp-error", class: "lp-error", role: "alert" });
    const results = el("div", { id: "lp-results", class: "lp-results", "aria-live": "polite" });
    let scene = 0;

    data.scenes.forEach((s, i) => {
      const thumb = el("button", { type: "button", class: "lp-thumb", "data-scene": String(i),
                                   title: `scene ${i}: ${s.caption}`, "aria-label": `scene ${i}` },
                       el("img", { src: `data:image/png;base64,${s.png}`, alt: "" }));
      thumb.addEventListener("click", () => { choose(i, true); });
      gallery.append(thumb);
    });

    function choose(i, withCaptions) {
      scene = i;
      const s = data.scenes[i];
      picture.src = `data:image/png;base64,${s.png}`;
      label.textContent = `scene ${i} (numbered as in the chapter)`;
      gallery.querySelectorAll(".lp-thumb").forEach((t) => t.classList.toggle("lp-chosen", t.dataset.scene == i));
      if (withCaptions) { boxA.value = s.caption; boxB.value = s.negative || s.caption; }
      update();
    }

    function update() {
      error.textContent = "";
      results.textContent = "";
      let rows;
      try {
        rows = model.scores(scene, boxA.value, boxB.value);
      } catch (err) {
        error.textContent = `Cannot score these captions: ${err.message}`;
        return;
      }
      const table = el("table", { class: "lp-table" });
      table.append(el("thead", {}, el("tr", {}, ...["model", "caption A", "caption B", "prefers", "margin (A − B)"]
        .map((h) => el("th", { text: h })))));
      const body = el("tbody");
      for (const [name, r] of Object.entries(rows)) {
        const cell = (c) => el("td", { class: r.prefers === c ? "lp-score lp-wins" : "lp-score", "data-model": name,
                                       "data-caption": c, "data-value": String(r[c]) }, r[c].toFixed(4));
        body.append(el("tr", {}, el("th", { text: name }), cell("A"), cell("B"),
                       el("td", { class: "lp-prefers", "data-model": name, text: r.prefers }),
                       el("td", { text: (r.margin >= 0 ? "+" : "") + r.margin.toFixed(4) })));
      }
      table.append(body);
      results.append(table, el("p", { class: "lp-verdict", text:
        `CLIP prefers caption ${rows.CLIP.prefers}, LABCLIP prefers caption ${rows.LABCLIP.prefers} ` +
        "(the higher cosine with the image wins; in bold)." }));
    }

    swap.addEventListener("click", () => {
      try { boxB.value = model.swapPartner(boxA.value); update(); } catch (err) {
        error.textContent = `No swap partner: ${err.message}`;
      }
    });
    reset.addEventListener("click", () => choose(scene, true));
    boxA.addEventListener("input", update);
    boxB.addEventListener("input", update);

    root.append(
      el("div", { class: "lp-top" },
         el("figure", { class: "lp-figure" }, picture, label),
         el("div", { class: "lp-controls" },
            el("label", { for: "lp-caption-a", text: "caption A" }), boxA,
            el("label", { for: "lp-caption-b", text: "caption B" }), boxB,
            el("div", { class: "lp-buttons" }, reset, swap), error)),
      results,
      el("p", { class: "lp-pick", text: `Pick a scene: the first ${data.scenes.length} scenes of held-out ` +
                                        "colour–shape combinations, never used to fit A." }),
      gallery,
      el("p", { class: "lp-words", text: `Words the miniature knows: ${Object.keys(data.words).join(", ")}.` }),
      el("p", { class: "lp-note", text: `Model: ${data.model}. Computed in your browser: its text tower ` +
                                        `(${data.layers} layers) runs on this page.` }));
    choose(0, true);
    root.dataset.ready = "true";
  }

  if (typeof module !== "undefined" && module.exports) {  // node: the model only (for checks)
    module.exports = { Model, erf };
    return;
  }
  const script = document.currentScript;
  function start() {
    const root = document.getElementById("labclip-playground");
    if (!root) return;
    const fail = () => {
      root.textContent = "The in-browser playground has no data on this site: it runs the miniature, so a site " +
        "built in the paper profile has none. Open the chapter in Colab or Jupyter to use the widget below.";
      root.dataset.ready = "missing";
    };
    const data = document.createElement("script");
    data.src = new URL("playground-data.js", script.src).href;
    data.onload = () => (window.LABCLIP_PLAYGROUND ? mount(root, window.LABCLIP_PLAYGROUND) : fail());
    data.onerror = fail;
    document.head.append(data);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
