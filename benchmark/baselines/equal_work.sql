-- Equal-work baseline, second half: the counts and every indicator of the catalogue from the typed, pseudonymised
-- rows that equal_work.py wrote into raw.<source> (the pipeline's raw tables), in the shape of
-- marts.area_indicators. Written from the dbt models' rules, independently of them.
--
-- Variables (set by equal_work.py):
--   seeds  = '/path/to/dbt_project/seeds'   -- reference/*.csv (the sample city's geography), catalogue/
--   cycles = [2018, 2025]                    -- the report cycles loaded (reference date 31.12.)
--   out    = '/path/to/area_indicators.parquet'
--
-- The sample city's geography has no reform (no area retires), so every cycle is counted on its own version by
-- area key, which equals the pipeline's restatement on the current version.

-- The person-level counts are statements of their own, each within the memory limit (DuckDB holds one large
-- aggregate at a time); the persons are a view, read again by each count rather than held once for all: in
-- one query with them materialized, the script spilled more than 30 GB at W4 under the 2GB limit; in one query
-- with them streamed, it ran out of memory at W3.
create temp view cycles as
    select report_cycle, make_date(report_cycle, 12, 31) as reference_date,
           lag(report_cycle) over (order by report_cycle) as previous_cycle
    from (select distinct report_cycle from raw.register);

-- main residents with their age at the reference date (completed years) and the city's migration background
-- (config/dortmund/city.yml: non-German, a second nationality other than German, born abroad)
create temp view residents as
    select
        report_cycle, person_key, household_key, unterbezirk_id, move_in_date,
        coalesce(move_in_date = birth_date, false) as moved_in_at_birth,
        year(reference_date) - year(birth_date)
            - case when month(reference_date) * 100 + day(reference_date)
                        < month(birth_date) * 100 + day(birth_date) then 1 else 0 end as age_years,
        nationality_group <> 'deutsch' as is_non_german,
        nationality_group <> 'deutsch' or coalesce(second_nationality_group <> 'deutsch', false)
            or birth_country = 'Ausland' as has_migration_background
    from raw.register
    where residence_type = 'H';

create temp table resident_counts as
    select
        report_cycle, unterbezirk_id,
        count(*) as residents,
        count(*) filter (where age_years < 15) as residents_age_0_14,
        count(*) filter (where age_years between 15 and 64) as residents_age_15_64,
        count(*) filter (where age_years between 15 and 24) as residents_age_15_24,
        count(*) filter (where age_years >= 65) as residents_age_65_plus,
        count(*) filter (where age_years < 18) as residents_age_0_17,
        count(*) filter (where age_years < 21) as residents_age_0_20,
        count(*) filter (where age_years between 18 and 64) as residents_age_18_64,
        count(*) filter (where age_years < 65) as residents_below_sgb2_age_bound,  -- dbt var sgb2_age_bound
        count(*) filter (where is_non_german) as residents_non_german,
        count(*) filter (where has_migration_background) as residents_migration_background
    from residents
    group by all;

-- each household once, in its oldest member's Unterbezirk (ties: the smaller pseudonymised person key): for a
-- household in one Unterbezirk that is its members' (min = max), only the others compare their members
create temp table household_counts as
with household_members as (
    select report_cycle, household_key,
           min(unterbezirk_id) as unterbezirk_id, max(unterbezirk_id) as last_unterbezirk_id,
           count(*) filter (where age_years >= 18) as adults, count(*) filter (where age_years < 18) as children
    from residents
    group by all
),
spread_oldest as (
    select report_cycle, household_key,
           min({'minus_age': -age_years, 'person_key': person_key, 'unterbezirk_id': unterbezirk_id}) as oldest
    from residents
    semi join (select report_cycle, household_key from household_members
               where unterbezirk_id <> last_unterbezirk_id) using (report_cycle, household_key)
    group by all
)
    select
        h.report_cycle, coalesce(s.oldest.unterbezirk_id, h.unterbezirk_id) as unterbezirk_id,
        count(*) as households,
        count(*) filter (where children > 0) as households_with_children,
        count(*) filter (where children > 0 and adults = 1) as households_single_parent
    from household_members as h
    left join spread_oldest as s using (report_cycle, household_key)
    group by all;

-- moves since the previous cycle loaded (none for the first): matched by pseudonymised person key and area
create temp table moves_out as
    select c.report_cycle, e.unterbezirk_id, count(*) as moves_out
    from residents as e
    join cycles as c on c.previous_cycle = e.report_cycle
    where not exists (select 1 from residents as r where r.report_cycle = c.report_cycle
                      and r.person_key = e.person_key and r.unterbezirk_id = e.unterbezirk_id)
    group by all;

-- (an anti join against the previous cycles' residents only: a correlated not exists over every resident ran
-- out of memory at W3)
create temp table moves_in as
    select r.report_cycle, r.unterbezirk_id, count(*) as moves_in
    from residents as r
    join cycles as c on c.report_cycle = r.report_cycle and c.previous_cycle is not null
    anti join (select report_cycle, person_key, unterbezirk_id from residents
               where report_cycle in (select previous_cycle from cycles)) as e
        on e.report_cycle = c.previous_cycle and e.person_key = r.person_key and e.unterbezirk_id = r.unterbezirk_id
    where r.move_in_date > make_date(c.previous_cycle, 12, 31) and not r.moved_in_at_birth
    group by all;

-- transfer recipients, each person once per cycle: SGB II before SGB XII before AsylbLG
create temp table recipients as
    select report_cycle, person_key, unterbezirk_id, age_years, scheme
    from (
        select report_cycle, person_key, unterbezirk_id, cast(age as integer) as age_years, 'sgb2' as scheme,
               1 as priority
        from raw.sgb2
        union all
        select report_cycle, person_key, unterbezirk_id,
               year(reference_date) - year(birth_date)
                   - case when month(reference_date) * 100 + day(reference_date)
                               < month(birth_date) * 100 + day(birth_date) then 1 else 0 end,
               case benefit_kind when 'HLU' then 'sgb12_hlu' else 'sgb12_gsi' end, 2
        from raw.sgb12
        union all
        select report_cycle, person_key, unterbezirk_id,
               year(reference_date) - year(birth_date)
                   - case when month(reference_date) * 100 + day(reference_date)
                               < month(birth_date) * 100 + day(birth_date) then 1 else 0 end,
               'asylblg', 3
        from raw.asylblg
    )
    qualify row_number() over (partition by report_cycle, person_key order by priority) = 1;

create temp table recipient_counts as
    select
        r.report_cycle, r.unterbezirk_id,
        count(*) as recipients_transfer,
        count(*) filter (where age_years < 15) as recipients_transfer_age_0_14,
        count(*) filter (where age_years >= 65) as recipients_transfer_age_65_plus,
        count(*) filter (where scheme = 'sgb2') as recipients_sgb2,
        count(*) filter (where scheme = 'sgb12_hlu') as recipients_sgb12_hlu,
        count(*) filter (where scheme = 'sgb12_gsi') as recipients_sgb12_gsi,
        count(*) filter (where scheme = 'asylblg') as recipients_asylblg,
        count(*) filter (where scheme = 'sgb2' and age_years < 15) as recipients_sgb2_age_0_14,
        count(*) filter (where scheme = 'sgb12_gsi' and age_years >= 65) as recipients_sgb12_gsi_age_65_plus,
        -- SGB II or SGB XII, not in the cycle's unemployment extract (MSS S3)
        count(*) filter (where scheme <> 'asylblg' and u.person_key is null) as recipients_transfer_not_unemployed
    from recipients as r
    left join (select distinct report_cycle, person_key from raw.unemployment) as u
        on u.report_cycle = r.report_cycle and u.person_key = r.person_key
    group by all;

create temp table unemployed_counts as
    select
        report_cycle, unterbezirk_id,
        count(*) as unemployed,
        count(*) filter (where unemployed_since <= reference_date - interval 1 year) as unemployed_long_term,
        count(*) filter (where age between 15 and 24) as unemployed_age_15_24,
        count(*) filter (where legal_basis = 'SGB II') as unemployed_sgb2,
        count(*) filter (where legal_basis = 'SGB III') as unemployed_sgb3
    from raw.unemployment
    group by all;

copy (
with
-- Unterbezirk -> statistischer Bezirk -> Stadtbezirk, and Unterbezirk -> Sozialraum
unterbezirke as (
    select ub.unterbezirk_id, ub.bezirk_id, ub.sozialraum_id, bz.stadtbezirk_id
    from read_csv(getvariable('seeds') || '/reference/unterbezirke.csv', header = true, all_varchar = true) as ub
    join read_csv(getvariable('seeds') || '/reference/statistische_bezirke.csv', header = true,
                  all_varchar = true) as bz using (bezirk_id)
),

-- every base area with every area it lies in (itself and the city included), per cycle
memberships as (
    select c.report_cycle, u.unterbezirk_id, m.area_level, m.area_id
    from (select unnest(getvariable('cycles'))::integer as report_cycle) as c
    cross join unterbezirke as u
    cross join lateral (values
        ('unterbezirk', u.unterbezirk_id), ('statistischer_bezirk', u.bezirk_id), ('sozialraum', u.sozialraum_id),
        ('stadtbezirk', u.stadtbezirk_id), ('city', 'city')) as m(area_level, area_id)
),

-- the areas an area of a delivered aggregate level lies in (never itself, never below)
containers as (
    select distinct m.area_level, m.area_id, c.area_level as container_level, c.area_id as container_id
    from memberships as m
    join memberships as c on c.report_cycle = m.report_cycle and c.unterbezirk_id = m.unterbezirk_id
    where (m.area_level, c.area_level) in (
        ('unterbezirk', 'statistischer_bezirk'), ('unterbezirk', 'sozialraum'), ('unterbezirk', 'stadtbezirk'),
        ('unterbezirk', 'city'), ('statistischer_bezirk', 'stadtbezirk'), ('statistischer_bezirk', 'city'),
        ('stadtbezirk', 'city'), ('sozialraum', 'city'))
),

catalogue as (
    -- by the header, every column as text: the catalogue's columns are declared in the catalogue alone
    select indicator_id, numerator_measure, denominator_measure, cast(scale as integer) as scale, change_of_indicator
    from read_csv(getvariable('seeds') || '/catalogue/indicator_catalogue.csv', header = true, delim = ',',
                  quote = '"', escape = '"', all_varchar = true)
),

-- every count of every Unterbezirk of the geography (zero where nobody is counted; the moves null without a
-- previous cycle) in long form: nulls are left out, so a measure without a value in a cycle is absent there
base_counts as (
    unpivot (
        select
            c.report_cycle, u.unterbezirk_id,
            coalesce(r.residents, 0) as residents,
            coalesce(r.residents_age_0_14, 0) as residents_age_0_14,
            coalesce(r.residents_age_15_64, 0) as residents_age_15_64,
            coalesce(r.residents_age_15_24, 0) as residents_age_15_24,
            coalesce(r.residents_age_65_plus, 0) as residents_age_65_plus,
            coalesce(r.residents_age_0_17, 0) as residents_age_0_17,
            coalesce(r.residents_age_0_20, 0) as residents_age_0_20,
            coalesce(r.residents_age_18_64, 0) as residents_age_18_64,
            coalesce(r.residents_below_sgb2_age_bound, 0) as residents_below_sgb2_age_bound,
            coalesce(r.residents_non_german, 0) as residents_non_german,
            coalesce(r.residents_migration_background, 0) as residents_migration_background,
            coalesce(h.households, 0) as households,
            coalesce(h.households_with_children, 0) as households_with_children,
            coalesce(h.households_single_parent, 0) as households_single_parent,
            case when c.previous_cycle is not null then coalesce(mi.moves_in, 0) end as moves_in,
            case when c.previous_cycle is not null then coalesce(mo.moves_out, 0) end as moves_out,
            coalesce(t.recipients_transfer, 0) as recipients_transfer,
            coalesce(t.recipients_transfer_age_0_14, 0) as recipients_transfer_age_0_14,
            coalesce(t.recipients_transfer_age_65_plus, 0) as recipients_transfer_age_65_plus,
            coalesce(t.recipients_sgb2, 0) as recipients_sgb2,
            coalesce(t.recipients_sgb12_hlu, 0) as recipients_sgb12_hlu,
            coalesce(t.recipients_sgb12_gsi, 0) as recipients_sgb12_gsi,
            coalesce(t.recipients_asylblg, 0) as recipients_asylblg,
            coalesce(t.recipients_sgb2_age_0_14, 0) as recipients_sgb2_age_0_14,
            coalesce(t.recipients_sgb12_gsi_age_65_plus, 0) as recipients_sgb12_gsi_age_65_plus,
            coalesce(t.recipients_transfer_not_unemployed, 0) as recipients_transfer_not_unemployed,
            coalesce(a.unemployed, 0) as unemployed,
            coalesce(a.unemployed_long_term, 0) as unemployed_long_term,
            coalesce(a.unemployed_age_15_24, 0) as unemployed_age_15_24,
            coalesce(a.unemployed_sgb2, 0) as unemployed_sgb2,
            coalesce(a.unemployed_sgb3, 0) as unemployed_sgb3
        from cycles as c
        cross join unterbezirke as u
        left join resident_counts as r using (report_cycle, unterbezirk_id)
        left join household_counts as h using (report_cycle, unterbezirk_id)
        left join moves_in as mi using (report_cycle, unterbezirk_id)
        left join moves_out as mo using (report_cycle, unterbezirk_id)
        left join recipient_counts as t using (report_cycle, unterbezirk_id)
        left join unemployed_counts as a using (report_cycle, unterbezirk_id)
    )
    on columns(* exclude (report_cycle, unterbezirk_id))
    into name measure_id value measure_value
),

-- added up to every area of every level (never averaged)
by_level as (
    select m.report_cycle, m.area_level, m.area_id, b.measure_id, cast(sum(b.measure_value) as bigint) as measure_value
    from memberships as m
    join base_counts as b using (report_cycle, unterbezirk_id)
    group by all
),

-- the residents of the previous cycle loaded, by area
previous_residents as (
    select n.report_cycle, n.area_level, n.area_id, p.measure_value as residents_previous_cycle,
           n.measure_value - p.measure_value as residents_change
    from by_level as n
    join cycles as c on c.report_cycle = n.report_cycle
    join by_level as p on p.report_cycle = c.previous_cycle and p.area_level = n.area_level
        and p.area_id = n.area_id and p.measure_id = 'residents'
    where n.measure_id = 'residents'
),

-- the aggregate deliveries: as delivered, and an additive measure added up to every area the delivered areas
-- lie in, where every delivered area inside has a value
aggregate_levels as (
    select distinct report_cycle, area_level, measure as measure_id from raw.aggregates where additive
),

aggregate_sums as (
    select l.report_cycle, k.container_level as area_level, k.container_id as area_id, l.measure_id,
           cast(sum(a.value) as bigint) as measure_value, count(a.value) = count(*) as is_complete
    from aggregate_levels as l
    join containers as k on k.area_level = l.area_level
    left join raw.aggregates as a on a.report_cycle = l.report_cycle and a.area_level = k.area_level
        and a.area_id = k.area_id and a.measure = l.measure_id
    group by all
),

measures as (
    select * from by_level
    union all
    select report_cycle, area_level, area_id, 'residents_previous_cycle', residents_previous_cycle from previous_residents
    union all
    select report_cycle, area_level, area_id, 'residents_change', residents_change from previous_residents
    union all
    select report_cycle, area_level, area_id, measure, value from raw.aggregates
    union all
    select report_cycle, area_level, area_id, measure_id, measure_value from aggregate_sums where is_complete
),

-- value = scale * numerator / denominator (the count itself without a denominator); none without a denominator
computed as (
    select
        n.report_cycle, n.area_level, n.area_id, k.indicator_id,
        n.measure_value as numerator,
        d.measure_value as denominator,
        case
            when k.denominator_measure is null then cast(n.measure_value as double)
            when d.measure_value > 0 then k.scale * n.measure_value / d.measure_value
        end as value
    from catalogue as k
    join measures as n on n.measure_id = k.numerator_measure
    left join measures as d
        on d.measure_id = k.denominator_measure
        and d.report_cycle = n.report_cycle and d.area_level = n.area_level and d.area_id = n.area_id
    where k.change_of_indicator is null and (k.denominator_measure is null or d.measure_value is not null)
),

-- a change: scale * (the indicator now - in the previous cycle loaded), in points of its unit, no counts
changes as (
    select now.report_cycle, now.area_level, now.area_id, k.indicator_id,
           cast(null as bigint) as numerator, cast(null as bigint) as denominator,
           k.scale * (now.value - previous.value) as value
    from catalogue as k
    join computed as now on now.indicator_id = k.change_of_indicator
    join cycles as c on c.report_cycle = now.report_cycle
    join computed as previous on previous.report_cycle = c.previous_cycle and previous.area_level = now.area_level
        and previous.area_id = now.area_id and previous.indicator_id = now.indicator_id
),

all_values as (
    select * from computed
    union all
    select * from changes
)

select
    cast(v.report_cycle as integer) as report_cycle,
    v.area_level,
    v.area_id,
    v.indicator_id,
    cast(v.numerator as bigint) as numerator,
    cast(v.denominator as bigint) as denominator,
    cast(v.value as double) as value,
    cast(city.value as double) as city_value
from all_values as v
left join all_values as city
    on city.area_level = 'city' and city.report_cycle = v.report_cycle and city.indicator_id = v.indicator_id
order by report_cycle, area_level, area_id, indicator_id
) to (getvariable('out')) (format parquet);
