/** Tracker counters and their Prometheus text form (served by `GET /metrics`). */

/** Why a connection was refused before its request was read. */
export type RejectReason = "rate_limit" | "max_connections" | "per_ip" | "sessions";

/** Counters the server updates; `render()` turns them into Prometheus exposition text. */
export class TrackerMetrics {
  connectionsTotal = 0;
  connectionsOpen = 0;
  sessionsOpen = 0;
  idleTimeouts = 0;
  rateLimitBlocks = 0;
  /** Session connections closed because queued output went over the shared budget. */
  shedForOutput = 0;
  readonly rejected: Record<RejectReason, number> = {
    rate_limit: 0,
    max_connections: 0,
    per_ip: 0,
    sessions: 0,
  };
  /** Session handshakes (Noise XX) completed and failed. */
  readonly handshakes = { ok: 0, failed: 0 };
  readonly #requests = new Map<string, number>();

  /** Counts one answered request by command and reply status. */
  countRequest(command: string, status: "OK" | "ERROR"): void {
    const key = `type="${command}",status="${status === "OK" ? "ok" : "error"}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Prometheus text (version 0.0.4), ending with a newline. */
  render(gauges: { activeRegistrations: number }, extra: string[] = []): string {
    const lines: string[] = [];
    const metric = (name: string, kind: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    metric("p2pchat_tracker_connections_total", "counter", "TCP connections accepted.", [
      ["", this.connectionsTotal],
    ]);
    metric("p2pchat_tracker_connections_open", "gauge", "TCP connections open now.", [
      ["", this.connectionsOpen],
    ]);
    metric("p2pchat_tracker_sessions_open", "gauge", "Extension session connections open now.", [
      ["", this.sessionsOpen],
    ]);
    metric(
      "p2pchat_tracker_session_handshakes_total",
      "counter",
      "Encrypted session handshakes, by result.",
      Object.entries(this.handshakes).map(([result, value]) => [`{result="${result}"}`, value]),
    );
    metric(
      "p2pchat_tracker_connections_rejected_total",
      "counter",
      "Connections refused before reading a request.",
      Object.entries(this.rejected).map(([reason, value]) => [`{reason="${reason}"}`, value]),
    );
    metric(
      "p2pchat_tracker_requests_total",
      "counter",
      "Rendezvous requests answered, by type and status.",
      [...this.#requests].map(([labels, value]) => [`{${labels}}`, value]),
    );
    metric(
      "p2pchat_tracker_sessions_shed_total",
      "counter",
      "Session connections closed because their unread output went over the shared budget.",
      [["", this.shedForOutput]],
    );
    metric("p2pchat_tracker_idle_timeouts_total", "counter", "Connections closed for silence.", [
      ["", this.idleTimeouts],
    ]);
    metric("p2pchat_tracker_rate_limit_blocks_total", "counter", "Times an IP was blocked.", [
      ["", this.rateLimitBlocks],
    ]);
    metric("p2pchat_tracker_registrations_active", "gauge", "Registrations not expired.", [
      ["", gauges.activeRegistrations],
    ]);
    lines.push(...extra);
    return lines.join("\n") + "\n";
  }
}
