import { describe, expect, it } from "vitest";
import { distanceKm, EARTH_RADIUS_KM } from "../../src/geo/distance.js";

const JFK = { latitude: 40.6413, longitude: -73.7781 };
const LAX = { latitude: 33.9416, longitude: -118.4085 };
const LHR = { latitude: 51.47, longitude: -0.4543 };
const SYD = { latitude: -33.9399, longitude: 151.1753 };
const PARIS = { latitude: 48.8566, longitude: 2.3522 };
const LONDON = { latitude: 51.5074, longitude: -0.1278 };

/** Published great-circle distances (km); haversine on the mean sphere must be within 1%. */
const PAIRS: [string, typeof JFK, typeof JFK, number][] = [
  ["JFK-LAX", JFK, LAX, 3983],
  ["LHR-JFK", LHR, JFK, 5555],
  ["SYD-LHR", SYD, LHR, 17016],
  ["London-Paris", LONDON, PARIS, 344],
];

describe("distanceKm", () => {
  it.each(PAIRS)("%s is within 1%% of the published distance", (_name, a, b, km) => {
    expect(Math.abs(distanceKm(a, b) - km) / km).toBeLessThan(0.01);
  });

  it("is symmetric and zero for the same point", () => {
    expect(distanceKm(JFK, LAX)).toBe(distanceKm(LAX, JFK));
    expect(distanceKm(LHR, LHR)).toBe(0);
  });

  it("crosses the antimeridian the short way", () => {
    const west = { latitude: 0, longitude: 179.5 };
    const east = { latitude: 0, longitude: -179.5 };
    expect(distanceKm(west, east)).toBeCloseTo((Math.PI / 180) * EARTH_RADIUS_KM, 6);
  });

  it("gives half the circumference for antipodes, and across a pole", () => {
    const halfWay = Math.PI * EARTH_RADIUS_KM;
    expect(distanceKm({ latitude: 0, longitude: 0 }, { latitude: 0, longitude: 180 })).toBeCloseTo(
      halfWay,
      6,
    );
    expect(distanceKm({ latitude: 90, longitude: 0 }, { latitude: -90, longitude: 0 })).toBeCloseTo(
      halfWay,
      6,
    );
    expect(
      distanceKm({ latitude: 89, longitude: 0 }, { latitude: 89, longitude: 180 }),
    ).toBeCloseTo((2 * Math.PI * EARTH_RADIUS_KM) / 180, 6);
  });
});
