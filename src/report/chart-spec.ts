/**
 * Chart descriptions: plain data the page's small script turns into uPlot
 * charts. All numbers are computed here, so the browser side only draws.
 */
export type AxisFormat = 'number' | 'percentile' | 'seconds' | 'percent' | 'micros' | 'bytes';

export interface ChartAxis {
  label: string;
  /** Log base; absent = linear. */
  log?: 2 | 10;
  format?: AxisFormat;
  min?: number;
}

export interface ChartSeries {
  label: string;
  color: string;
  dash?: number[];
  /** Plot against the second y axis. */
  secondAxis?: boolean;
  points?: boolean;
}

export interface ChartSpec {
  id: string;
  /** Which section of the page the chart goes into (an element id suffix: charts-<group>). */
  group: string;
  title: string;
  caption: string;
  x: ChartAxis;
  y: ChartAxis;
  y2?: ChartAxis;
  series: ChartSeries[];
  /** data[0] = x values, data[i + 1] = series i; null = gap. */
  data: (number | null)[][];
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function colorFor(i: number): string {
  return palette[i % palette.length];
}
