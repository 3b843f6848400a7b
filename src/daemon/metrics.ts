import type {BindAction} from '../protocol/types.js'

// Prometheus text format, kept in process: counters and one latency histogram are all that is needed.
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

export class Metrics {
  private readonly binds: Record<BindAction, number> = {allow: 0, remap: 0, deny: 0}
  private readonly bucketCounts = new Array<number>(BUCKETS.length).fill(0)
  private requests = 0
  private latencySum = 0

  countBind(action: BindAction): void {
    this.binds[action]++
  }

  /** Requests answered since start. */
  get answered(): number {
    return this.requests
  }

  observeRequest(seconds: number): void {
    this.requests++
    this.latencySum += seconds
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.bucketCounts[i]++
  }

  render(gauges: {leasesByService: Record<string, number>; eventsSent: number; subscribers: number; subscribersDropped: number; eventsHeld: number; heapUsed: number}): string {
    const lines: string[] = [
      '# HELP styxy_leases Active leases by service type.', '# TYPE styxy_leases gauge',
      ...Object.entries(gauges.leasesByService).map(([s, n]) => `styxy_leases{service="${s}"} ${n}`),
      '# HELP styxy_binds_total Bind decisions by action.', '# TYPE styxy_binds_total counter',
      `styxy_binds_total{action="allowed"} ${this.binds.allow}`,
      `styxy_binds_total{action="remapped"} ${this.binds.remap}`,
      `styxy_binds_total{action="denied"} ${this.binds.deny}`,
      '# HELP styxy_events_sent_total Events sent to subscribers.', '# TYPE styxy_events_sent_total counter',
      `styxy_events_sent_total ${gauges.eventsSent}`,
      '# HELP styxy_event_subscribers Connected event subscribers.', '# TYPE styxy_event_subscribers gauge',
      `styxy_event_subscribers ${gauges.subscribers}`,
      '# HELP styxy_event_subscribers_dropped_total Subscribers dropped for falling behind (close 4008).', '# TYPE styxy_event_subscribers_dropped_total counter',
      `styxy_event_subscribers_dropped_total ${gauges.subscribersDropped}`,
      '# HELP styxy_event_held_bytes What subscribers hold unsent, as counted against the hub limits.', '# TYPE styxy_event_held_bytes gauge',
      `styxy_event_held_bytes ${gauges.eventsHeld}`,
      '# HELP styxy_heap_used_bytes The daemon\'s V8 heap in use.', '# TYPE styxy_heap_used_bytes gauge',
      `styxy_heap_used_bytes ${gauges.heapUsed}`,
      '# HELP styxy_request_duration_seconds API request latency.', '# TYPE styxy_request_duration_seconds histogram',
      ...BUCKETS.map((b, i) => `styxy_request_duration_seconds_bucket{le="${b}"} ${this.bucketCounts[i]}`),
      `styxy_request_duration_seconds_bucket{le="+Inf"} ${this.requests}`,
      `styxy_request_duration_seconds_sum ${this.latencySum}`,
      `styxy_request_duration_seconds_count ${this.requests}`,
    ]
    return lines.join('\n') + '\n'
  }
}
